package main

import "testing"

// The nearest-rank rule must match bench/stats.py: every reported figure is an observed value.
func TestPercentileIsNearestRank(t *testing.T) {
	values := []int64{10, 20, 30, 40, 50, 60, 70, 80, 90, 100}
	cases := map[float64]int64{0: 10, 1: 10, 10: 10, 11: 20, 50: 50, 90: 90, 99: 100, 100: 100}
	for pct, want := range cases {
		if got := percentile(values, pct); got != want {
			t.Errorf("percentile(%v) = %d, want %d", pct, got, want)
		}
	}
}

func TestSummarizeInMilliseconds(t *testing.T) {
	s := summarize([]int64{3_000_000, 1_000_000, 2_000_000})
	if s.Count != 3 || s.P50Ms != 2 || s.MaxMs != 3 || s.MeanMs != 2 {
		t.Errorf("summarize = %+v", s)
	}
	if empty := summarize(nil); empty.Count != 0 || empty.MaxMs != 0 {
		t.Errorf("summarize(nil) = %+v", empty)
	}
}

func TestCollectMergesWorkers(t *testing.T) {
	workers := []worker{
		{ok: 2, latencies: []int64{1, 2}},
		{ok: 1, errors: 1, firstError: "boom", latencies: []int64{3}},
	}
	r := collect(workers, options{workload: "write", concurrency: 2, conns: 1}, 4, 0.5)
	if r.Ok != 3 || r.Errors != 1 || len(r.LatenciesNs) != 3 || r.FirstError == nil || *r.FirstError != "boom" {
		t.Errorf("collect = %+v", r)
	}
}

func TestRandomKeysAreDistinctAndShapedLikeLargeStoreKeys(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 100000; i++ {
		k := string(randomKeyName(i, 1))
		if len(k) != len("user/")+16 || k[:5] != "user/" || seen[k] {
			t.Fatalf("key %d = %q (seen before: %v)", i, k, seen[k])
		}
		seen[k] = true
	}
	if string(randomKeyName(7, 1)) == string(randomKeyName(7, 2)) {
		t.Errorf("the seed does not change the key space")
	}
}

func TestPreloadKeysStartAtFirst(t *testing.T) {
	o := options{first: 5}
	if got := string(preloadKey(o, 2)); got != "bench-00007" {
		t.Errorf("preloadKey = %q", got)
	}
	o.randomKeys, o.seed = true, 3
	if string(preloadKey(o, 2)) != string(randomKeyName(7, 3)) {
		t.Errorf("random preload keys do not start at -first")
	}
}
