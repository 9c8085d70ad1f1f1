package main

import (
	"context"
	"fmt"
	"math"
)

// variant is one thing measured: run returns one sample (seconds, or MiB/s) or an error.
type variant struct {
	name    string
	run     func(ctx context.Context) (float64, error)
	samples []float64
	errs    []error
}

// interleave runs the variants round-robin: each iteration runs every variant once, starting at a
// different one each time, so machine noise and order effects hit all of them alike. The first
// warmup iterations are not recorded (and any error in them aborts: the setup is broken).
func interleave(ctx context.Context, vs []*variant, warmup, iters int, progress func(done int)) error {
	k := len(vs)
	for i := range warmup + iters {
		for j := range k {
			v := vs[(i+j)%k]
			x, err := v.run(ctx)
			if ctx.Err() != nil {
				return errInterrupted
			}
			switch {
			case i < warmup && err != nil:
				return fmt.Errorf("warm-up of %s: %w", v.name, err)
			case i < warmup:
			case err != nil:
				v.errs = append(v.errs, err)
			default:
				v.samples = append(v.samples, x)
			}
		}
		if i >= warmup && progress != nil {
			progress(i - warmup + 1)
		}
	}
	return nil
}

func (v *variant) p(p float64) float64 { return Percentile(v.samples, p) }

// healthy reports whether at least 90% of the variant's runs succeeded (and at least one did).
func (v *variant) healthy() bool {
	return len(v.samples) > 0 && len(v.errs)*10 <= len(v.samples)+len(v.errs)
}

// count is the N column: samples, plus failed runs when there were any.
func (v *variant) count() string {
	if len(v.errs) > 0 {
		return fmt.Sprintf("%d (+%d failed)", len(v.samples), len(v.errs))
	}
	return fmt.Sprint(len(v.samples))
}

// compare fills a row with v's figures and its ratio to base (nil: no baseline). fmtv formats one
// value (FormatSeconds or FormatRate); withP99 is false where a p99 means nothing.
func compare(name string, v, base *variant, fmtv func(float64) string, withP99 bool) (Row, float64, float64, float64) {
	r := Row{Name: name, N: v.count(), P50: fmtv(v.p(50))}
	if withP99 && len(v.samples) > 0 {
		r.P99 = fmtv(v.p(99))
	}
	ratio, lo, hi := math.NaN(), math.NaN(), math.NaN()
	if base != nil {
		r.Baseline = base.name + " " + fmtv(base.p(50))
		if len(v.samples) > 0 && len(base.samples) > 0 {
			ratio = v.p(50) / base.p(50)
			lo, hi = RatioCI(v.samples, base.samples, 2000)
			r.Ratio = FormatRatio(ratio, lo, hi)
		}
	}
	return r, ratio, lo, hi
}

// noise notes when a ratio's interval straddles its target: the verdict could flip on a rerun.
func noise(blk *Block, name string, target, lo, hi float64) {
	if !math.IsNaN(lo) && lo <= target && target <= hi {
		blk.Note("%s: the ratio's 95%% interval [%s–%s] contains the target %s×: within noise, the verdict may flip on a rerun",
			name, sig3(lo), sig3(hi), sig3(target))
	}
}

// firstErrors notes the failures of a variant (at most 3 distinct messages) and reports whether
// the variant is healthy (see healthy).
func firstErrors(blk *Block, v *variant) bool {
	if len(v.errs) == 0 {
		return v.healthy()
	}
	seen := map[string]bool{}
	var msgs []string
	for _, e := range v.errs {
		m := e.Error()
		if r := []rune(m); len(r) > 160 {
			m = string(r[:160]) + "…"
		}
		if !seen[m] && len(msgs) < 3 {
			seen[m] = true
			msgs = append(msgs, m)
		}
	}
	blk.Note("%s: %d failed runs, e.g. %q", v.name, len(v.errs), msgs)
	return v.healthy()
}
