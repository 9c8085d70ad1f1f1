package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podsandbox/podsandbox"
	"github.com/podsandbox/podsandbox/internal/e2e"
)

// rowIsolation is row 13: what isolation costs. Cold start (Start, then `true`) and exec `true`
// under runc and under gVisor, in both modes, gVisor as a ratio to runc from the same run; and the
// default NetworkPolicy's cost on Start against WithOpenNetwork, with the enforcer's rule sync
// (how long after Start returned the node's iptables held the pod's rules).
func (b *bench) rowIsolation(ctx context.Context, blk *Block) error {
	if _, err := b.cs.NodeV1().RuntimeClasses().Get(ctx, e2e.GVisorClass, metav1.GetOptions{}); err != nil {
		if !apierrors.IsNotFound(err) {
			return err
		}
		blk.Note("gVisor rows not run: the cluster has no RuntimeClass %s (make cluster-up installs it unless GVISOR=0)", e2e.GVisorClass)
		return b.policyCost(ctx, blk)
	}
	gv := podsandbox.WithRuntimeClass(e2e.GVisorClass)
	type pair struct {
		mode       podsandbox.Mode
		image      string
		label      string
		runc, gvis *variant
	}
	pairs := []*pair{
		{mode: podsandbox.ModeHTTP, image: e2e.ImageServer, label: "HTTP mode by pod IP"},
		{mode: podsandbox.ModeAPI, image: e2e.ImageBusybox, label: "API mode"},
	}
	var vs []*variant
	for _, p := range pairs {
		extra := []podsandbox.Option{}
		if p.mode == podsandbox.ModeHTTP {
			extra = append(extra, podsandbox.WithReach(podsandbox.ReachPodIP))
		}
		p.runc = &variant{name: p.label + ", runc", run: b.coldStart("iso-"+string(p.mode)+"-runc", p.image, p.mode, nil, extra...)}
		p.gvis = &variant{name: p.label + ", gVisor", run: b.coldStart("iso-"+string(p.mode)+"-gvisor", p.image, p.mode, nil, append(extra, gv)...)}
		vs = append(vs, p.runc, p.gvis)
	}
	runs := max(b.opt.startRuns/2, 3)
	if err := interleave(ctx, vs, 1, runs, func(i int) { b.progress("row 13: cold starts %d/%d", i, runs) }); err != nil {
		return err
	}
	for _, p := range pairs {
		firstErrors(blk, p.runc)
		firstErrors(blk, p.gvis)
		r, _, _, _ := compare("Start + `true`, "+p.gvis.name, p.gvis, p.runc, FormatSeconds, true)
		blk.Add(r)
		r, _, _, _ = compare("Start + `true`, "+p.runc.name+" (baseline)", p.runc, nil, FormatSeconds, true)
		blk.Add(r)
	}

	// exec `true` on one pod per runtime and mode
	var execs []*variant
	var started []*podsandbox.KubernetesPodSandbox
	defer func() {
		for _, sb := range started {
			_ = sb.Stop(context.WithoutCancel(ctx))
		}
	}()
	for _, p := range pairs {
		for _, rt := range []struct {
			name string
			opts []podsandbox.Option
		}{{"runc", nil}, {"gVisor", []podsandbox.Option{gv}}} {
			opts := append([]podsandbox.Option{podsandbox.WithSandboxID(fmt.Sprintf("iso-exec-%s-%s", p.mode, strings.ToLower(rt.name)))}, rt.opts...)
			if p.mode == podsandbox.ModeHTTP {
				opts = append(opts, podsandbox.WithReach(podsandbox.ReachPodIP))
			}
			sb, err := b.client.NewSandbox(p.image, b.sandboxOptions(p.mode, opts...)...)
			if err != nil {
				return err
			}
			if err := sb.Start(ctx); err != nil {
				return fmt.Errorf("%s, %s: %w", p.label, rt.name, err)
			}
			started = append(started, sb)
			execs = append(execs, &variant{name: p.label + ", " + rt.name, run: execTrue(sb)})
		}
	}
	iters := max(b.opt.execIters/2, 10)
	if err := interleave(ctx, execs, b.opt.execWarmup, iters, nil); err != nil {
		return err
	}
	for i := 0; i < len(execs); i += 2 {
		runc, gvis := execs[i], execs[i+1]
		firstErrors(blk, gvis)
		r, _, _, _ := compare("exec `true`, "+gvis.name, gvis, runc, FormatSeconds, true)
		blk.Add(r)
		r, _, _, _ = compare("exec `true`, "+runc.name+" (baseline)", runc, nil, FormatSeconds, true)
		blk.Add(r)
	}
	blk.Note("gVisor: runsc %s, platform systrap (no /dev/kvm here), through containerd-shim-runsc-v1", "built from gvisor.dev/gvisor")
	return b.policyCost(ctx, blk)
}

// policyCost measures Start + `true` with the default NetworkPolicy against WithOpenNetwork (API
// mode, runc), and, where this machine's iptables holds kube-router's rules, how long after Start
// returned the pod's rules appeared.
func (b *bench) policyCost(ctx context.Context, blk *Block) error {
	var lags []float64
	enforcer := kubeRouterRules() != ""
	withPolicy := &variant{name: "API mode, default NetworkPolicy", run: b.coldStart("iso-policy", e2e.ImageBusybox, podsandbox.ModeAPI,
		func(ctx context.Context, sb *podsandbox.KubernetesPodSandbox) {
			if enforcer {
				lags = append(lags, ruleLag(ctx, b, sb))
			}
		})}
	open := &variant{name: "API mode, WithOpenNetwork", run: b.coldStart("iso-open", e2e.ImageBusybox, podsandbox.ModeAPI, nil, podsandbox.WithOpenNetwork())}
	runs := max(b.opt.startRuns/2, 3)
	if err := interleave(ctx, []*variant{withPolicy, open}, 1, runs, nil); err != nil {
		return err
	}
	firstErrors(blk, withPolicy)
	r, _, _, _ := compare("Start + `true`, "+withPolicy.name, withPolicy, open, FormatSeconds, true)
	blk.Add(r)
	r, _, _, _ = compare("Start + `true`, "+open.name+" (baseline)", open, nil, FormatSeconds, true)
	blk.Add(r)
	if !enforcer {
		blk.Note("the enforcer's rule sync was not measured: this machine's iptables holds no kube-router rules (NETPOL=0, or another cluster)")
		return nil
	}
	if len(lags) > 1 {
		lags = lags[1:] // the warm-up round
	}
	inPlace, lost := 0, 0
	var seen []float64
	for _, l := range lags {
		switch {
		case l < 0:
			lost++
		case l == 0:
			inPlace++
		}
		if l >= 0 {
			seen = append(seen, l)
		}
	}
	if lost > 0 {
		blk.Note("in %d runs the pod's rules did not appear within 30 s", lost)
	}
	lags = seen
	blk.Add(Row{Name: "enforcer (kube-router) rule sync after Start returned", N: fmt.Sprint(len(lags)),
		P50: FormatSeconds(Percentile(lags, 50)), P99: FormatSeconds(Percentile(lags, 99))})
	blk.Note("kube-router had written the pod's rules before Start returned in %d of %d runs (0 s above); until then the pod's traffic is not filtered", inPlace, len(lags))
	return nil
}

// kubeRouterRules returns kube-router's forward chain on this machine, "" when there is none.
func kubeRouterRules() string {
	out, err := exec.Command("iptables", "-S", "KUBE-ROUTER-FORWARD").Output()
	if err != nil {
		return ""
	}
	return string(out)
}

// ruleLag polls this machine's iptables (every 5 ms, up to 30 s) until kube-router's forward chain
// names the pod's IP, and returns how long that took after the call (0 when already there at the
// first look; -1 when it never did).
func ruleLag(ctx context.Context, b *bench, sb *podsandbox.KubernetesPodSandbox) float64 {
	pod, err := b.cs.CoreV1().Pods(b.ns).Get(ctx, sb.PodName(), metav1.GetOptions{})
	if err != nil || pod.Status.PodIP == "" {
		return -1
	}
	t0 := time.Now()
	for {
		if rules := kubeRouterRules(); strings.Contains(rules, " "+pod.Status.PodIP+"/32 ") || strings.Contains(rules, " "+pod.Status.PodIP+" ") {
			if d := time.Since(t0); d > 10*time.Millisecond {
				return d.Seconds()
			}
			return 0
		}
		if time.Since(t0) > 30*time.Second || errors.Is(ctx.Err(), context.Canceled) {
			return -1
		}
		time.Sleep(5 * time.Millisecond)
	}
}
