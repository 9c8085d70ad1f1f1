package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// Percentile returns the p-th percentile (0 < p <= 100) of vals by the nearest-rank method: the
// smallest value with at least p% of the values at or below it. So p99 of fewer than 100 values is
// the maximum, and p50 of an even count is the lower of the two middle values. vals need not be
// sorted and is not modified. It returns NaN for no values.
func Percentile(vals []float64, p float64) float64 {
	if len(vals) == 0 {
		return math.NaN()
	}
	s := slices.Clone(vals)
	slices.Sort(s)
	return percentileSorted(s, p)
}

func percentileSorted(s []float64, p float64) float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	return s[min(max(rank, 1), len(s))-1]
}

// Seconds converts durations to float seconds, the unit the time rows are kept in.
func Seconds(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = d.Seconds()
	}
	return out
}

// RatioCI returns a 95% bootstrap confidence interval of median(a)/median(b): both samples are
// resampled with replacement (independently, which is conservative for interleaved runs) reps
// times with a fixed seed, so the same data always gives the same interval.
func RatioCI(a, b []float64, reps int) (lo, hi float64) {
	return bootstrapCI(a, b, reps, func(ma, mb float64) float64 { return ma / mb })
}

// DiffCI returns a 95% bootstrap confidence interval of median(a) − median(b) (an overhead in
// seconds), resampled as RatioCI does.
func DiffCI(a, b []float64, reps int) (lo, hi float64) {
	return bootstrapCI(a, b, reps, func(ma, mb float64) float64 { return ma - mb })
}

// bootstrapCI is the 95% interval of stat(median(a'), median(b')) over reps resamples a', b'.
func bootstrapCI(a, b []float64, reps int, stat func(ma, mb float64) float64) (lo, hi float64) {
	if len(a) == 0 || len(b) == 0 {
		return math.NaN(), math.NaN()
	}
	r := rand.New(rand.NewPCG(1, 2))
	ra, rb := make([]float64, len(a)), make([]float64, len(b))
	vals := make([]float64, 0, reps)
	for range reps {
		for i := range ra {
			ra[i] = a[r.IntN(len(a))]
		}
		for i := range rb {
			rb[i] = b[r.IntN(len(b))]
		}
		slices.Sort(ra)
		slices.Sort(rb)
		vals = append(vals, stat(percentileSorted(ra, 50), percentileSorted(rb, 50)))
	}
	slices.Sort(vals)
	return percentileSorted(vals, 2.5), percentileSorted(vals, 97.5)
}
