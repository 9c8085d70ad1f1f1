package podsandbox

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// TestClassify runs the start-failure classifier over pod statuses in testdata/pods.
func TestClassify(t *testing.T) {
	files, _ := filepath.Glob("testdata/pods/*.json")
	if len(files) < 8 {
		t.Fatalf("expected the pod fixtures, found %d", len(files))
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var fx struct {
				WantReason   string     `json:"wantReason"`
				WantTerminal bool       `json:"wantTerminal"`
				Grace        string     `json:"grace"`
				Pod          corev1.Pod `json:"pod"`
			}
			if err := json.Unmarshal(raw, &fx); err != nil {
				t.Fatal(err)
			}
			sb := newTestSandbox(t)
			if fx.Grace != "" {
				d, _ := time.ParseDuration(fx.Grace)
				sb.cfg.unschedulable = d
			}
			grace := map[string]time.Time{}
			reason, msg, terminal := sb.classify(&fx.Pod, grace)
			if reason != fx.WantReason || terminal != fx.WantTerminal {
				t.Errorf("classify = %q %v (%s), want %q %v", reason, terminal, msg, fx.WantReason, fx.WantTerminal)
			}
		})
	}
}

func TestClassifyGrace(t *testing.T) {
	sb := newTestSandbox(t, WithUnschedulableGrace(50*time.Millisecond))
	p := &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{
		Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable, Message: "0/1 nodes are available",
	}}}}
	grace := map[string]time.Time{}
	if _, _, term := sb.classify(p, grace); term {
		t.Fatal("unschedulable must get a grace")
	}
	time.Sleep(60 * time.Millisecond)
	if r, _, term := sb.classify(p, grace); !term || r != "Unschedulable" {
		t.Fatalf("after the grace: %q %v", r, term)
	}
}
