package main

import (
	"bufio"
	"io"
	"strconv"
	"strings"
)

// GoBench holds the ns/op figures of `go test -bench` output, one per -count run, by benchmark
// name without the -GOMAXPROCS suffix.
type GoBench map[string][]float64

// ParseGoBench reads `go test -bench` output. Lines that are not benchmark results are skipped.
func ParseGoBench(r io.Reader) (GoBench, error) {
	out := GoBench{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		for i := 2; i+1 < len(f); i += 2 {
			if f[i+1] != "ns/op" {
				continue
			}
			ns, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			name := f[0]
			if j := strings.LastIndexByte(name, '-'); j > 0 {
				if _, err := strconv.Atoi(name[j+1:]); err == nil {
					name = name[:j]
				}
			}
			out[name] = append(out[name], ns)
			break
		}
	}
	return out, sc.Err()
}
