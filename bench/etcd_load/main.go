// etcd_load: a closed-loop load generator for etcd's native gRPC KV API.
//
// It keeps -concurrency requests in flight (one goroutine each, spread over
// -conns gRPC connections), discards a -warmup, then counts the requests that
// started after the warm-up and finished inside the -duration window, exactly
// as bench/loadgen.py does for the Python-driven systems. It prints one JSON
// object: counts, nearest-rank latency percentiles, every counted latency in
// nanoseconds (so the Python report computes the same statistics for every
// system), and its own CPU time over the measured window (getrusage), so the
// generator's share of the machine is reported next to every figure.
//
// Reads are Range without Serializable: linearizable (ReadIndex on the leader).
// Built offline at set-up (bench/setup.sh) in GOPATH mode against Debian's
// golang-etcd-server-dev sources; it talks to etcdserverpb.KV directly rather
// than through clientv3 so the client does as little work per request as it can.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io/ioutil"
	"math"
	"math/rand"
	"os"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	pb "go.etcd.io/etcd/etcdserver/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// errorPause is how long a worker waits after a failed request, so a dead
// member is not spun on (bench/loadgen.py's ERROR_PAUSE_S).
const errorPause = 10 * time.Millisecond

// mixReadFraction is the share of reads in the mix workload (bench/workload.py).
const mixReadFraction = 0.9

type options struct {
	endpoints   []string
	workload    string
	concurrency int
	conns       int
	warmup      time.Duration
	duration    time.Duration
	valueSize   int
	keys        int
	first       int
	randomKeys  bool
	cacert      string
	cert        string
	key         string
	seed        int64
	timeout     time.Duration
}

type summary struct {
	Count  int     `json:"count"`
	MeanMs float64 `json:"mean_ms"`
	P50Ms  float64 `json:"p50_ms"`
	P90Ms  float64 `json:"p90_ms"`
	P99Ms  float64 `json:"p99_ms"`
	MaxMs  float64 `json:"max_ms"`
}

type result struct {
	Generator   string  `json:"generator"`
	Workload    string  `json:"workload"`
	Concurrency int     `json:"concurrency"`
	Connections int     `json:"connections"`
	Ok          int     `json:"ok"`
	Errors      int     `json:"errors"`
	FirstError  *string `json:"first_error"`
	WindowS     float64 `json:"window_s"`
	CPUS        float64 `json:"cpu_s"`
	Summary     summary `json:"summary"`
	LatenciesNs []int64 `json:"latencies_ns"`
}

type worker struct {
	ok         int
	errors     int
	firstError string
	latencies  []int64
}

func parseFlags() (options, error) {
	var o options
	var endpoints string
	flag.StringVar(&endpoints, "endpoints", "127.0.0.1:2379", "comma-separated host:port list; the first is used")
	flag.StringVar(&o.workload, "workload", "write", "write, read, mix or preload (write every key once)")
	flag.IntVar(&o.concurrency, "concurrency", 1, "requests in flight")
	flag.IntVar(&o.conns, "conns", 0, "gRPC connections (0: min(concurrency, 4), as bench/loadgen.py)")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "warm-up before the measured window")
	flag.DurationVar(&o.duration, "duration", 4*time.Second, "measured window")
	flag.IntVar(&o.valueSize, "value-size", 100, "bytes per value")
	flag.IntVar(&o.keys, "keys", 1000, "distinct keys (bench-00000 ...)")
	flag.IntVar(&o.first, "first", 0, "preload: the first key's number (keys first .. first+keys-1)")
	flag.BoolVar(&o.randomKeys, "random-keys", false,
		"key i is user/ and 16 hex digits of a 64-bit mix of i and -seed, as bench/large_store.py's random keys")
	flag.StringVar(&o.cacert, "cacert", "", "CA certificate (PEM): turns TLS on")
	flag.StringVar(&o.cert, "cert", "", "client certificate (PEM), for mutual TLS")
	flag.StringVar(&o.key, "key", "", "client key (PEM), for mutual TLS")
	flag.Int64Var(&o.seed, "seed", 1, "random seed")
	flag.DurationVar(&o.timeout, "request-timeout", 10*time.Second, "per-request deadline")
	flag.Parse()
	o.endpoints = strings.Split(endpoints, ",")
	switch {
	case o.endpoints[0] == "":
		return o, fmt.Errorf("-endpoints is empty")
	case o.workload != "write" && o.workload != "read" && o.workload != "mix" && o.workload != "preload":
		return o, fmt.Errorf("-workload %q: expected write, read, mix or preload", o.workload)
	case o.concurrency < 1:
		return o, fmt.Errorf("-concurrency %d: must be >= 1", o.concurrency)
	case o.first < 0:
		return o, fmt.Errorf("-first %d: must be >= 0", o.first)
	case o.keys < 1 || o.valueSize < 0 || o.duration <= 0 || o.warmup < 0:
		return o, fmt.Errorf("-keys >= 1, -value-size >= 0, -duration > 0 and -warmup >= 0 are required")
	case (o.cert == "") != (o.key == ""):
		return o, fmt.Errorf("-cert and -key go together")
	}
	if o.conns <= 0 {
		o.conns = o.concurrency
		if o.conns > 4 {
			o.conns = 4
		}
	}
	return o, nil
}

func dialOptions(o options) ([]grpc.DialOption, error) {
	opts := []grpc.DialOption{grpc.WithBlock()}
	if o.cacert == "" {
		return append(opts, grpc.WithInsecure()), nil
	}
	pem, err := ioutil.ReadFile(o.cacert)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no certificate found", o.cacert)
	}
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if o.cert != "" {
		pair, err := tls.LoadX509KeyPair(o.cert, o.key)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return append(opts, grpc.WithTransportCredentials(credentials.NewTLS(cfg))), nil
}

func keyName(i int) []byte { return []byte(fmt.Sprintf("bench-%05d", i)) }

// mix64 is splitmix64's finalizer: distinct inputs give distinct, evenly spread outputs.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// randomKeyName is key i of a random key space: each new key lands anywhere in the
// store's key order, as user ids or UUIDs do.
func randomKeyName(i int, seed int64) []byte {
	return []byte(fmt.Sprintf("user/%016x", mix64(uint64(i)^mix64(uint64(seed)))))
}

// preloadKey is the key a preload writes as its i-th.
func preloadKey(o options, i int) []byte {
	if o.randomKeys {
		return randomKeyName(o.first+i, o.seed)
	}
	return keyName(o.first + i)
}

func makeValue(rng *rand.Rand, size int) []byte {
	const letters = "abcdefghijklmnopqrstuvwxyz"
	out := make([]byte, size)
	for i := range out {
		out[i] = letters[rng.Intn(len(letters))]
	}
	return out
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

// percentile is the nearest-rank percentile of ascending values (bench/stats.py).
func percentile(sorted []int64, pct float64) int64 {
	rank := int(math.Ceil(pct / 100 * float64(len(sorted))))
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}

func summarize(lat []int64) summary {
	if len(lat) == 0 {
		return summary{}
	}
	sorted := append([]int64(nil), lat...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	var total float64
	for _, v := range sorted {
		total += float64(v)
	}
	ms := func(ns int64) float64 { return float64(ns) / 1e6 }
	return summary{
		Count:  len(sorted),
		MeanMs: total / float64(len(sorted)) / 1e6,
		P50Ms:  ms(percentile(sorted, 50)),
		P90Ms:  ms(percentile(sorted, 90)),
		P99Ms:  ms(percentile(sorted, 99)),
		MaxMs:  ms(sorted[len(sorted)-1]),
	}
}

func preload(clients []pb.KVClient, o options) result {
	value := makeValue(rand.New(rand.NewSource(o.seed)), o.valueSize)
	start, cpu0 := time.Now(), cpuSeconds()
	var wg sync.WaitGroup
	workers := make([]worker, o.concurrency)
	for lane := 0; lane < o.concurrency; lane++ {
		wg.Add(1)
		go func(lane int) {
			defer wg.Done()
			w := &workers[lane]
			kv := clients[lane%len(clients)]
			for i := lane; i < o.keys; i += o.concurrency {
				ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
				t0 := time.Now()
				_, err := kv.Put(ctx, &pb.PutRequest{Key: preloadKey(o, i), Value: value})
				cancel()
				if err != nil {
					w.errors++
					if w.firstError == "" {
						w.firstError = err.Error()
					}
					continue
				}
				w.ok++
				w.latencies = append(w.latencies, time.Since(t0).Nanoseconds())
			}
		}(lane)
	}
	wg.Wait()
	return collect(workers, o, time.Since(start).Seconds(), cpuSeconds()-cpu0)
}

func load(clients []pb.KVClient, o options) result {
	start := time.Now()
	warmEnd := start.Add(o.warmup)
	end := warmEnd.Add(o.duration)
	var cpu0, cpu1 float64
	var marks sync.WaitGroup
	marks.Add(2)
	time.AfterFunc(time.Until(warmEnd), func() { cpu0 = cpuSeconds(); marks.Done() })
	time.AfterFunc(time.Until(end), func() { cpu1 = cpuSeconds(); marks.Done() })

	master := rand.New(rand.NewSource(o.seed))
	workers := make([]worker, o.concurrency)
	var wg sync.WaitGroup
	for i := 0; i < o.concurrency; i++ {
		rng := rand.New(rand.NewSource(master.Int63()))
		wg.Add(1)
		go func(w *worker, kv pb.KVClient, rng *rand.Rand) {
			defer wg.Done()
			value := makeValue(rng, o.valueSize)
			for {
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				key := keyName(rng.Intn(o.keys))
				isWrite := o.workload == "write" || (o.workload == "mix" && rng.Float64() >= mixReadFraction)
				ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
				var err error
				if isWrite {
					_, err = kv.Put(ctx, &pb.PutRequest{Key: key, Value: value})
				} else {
					_, err = kv.Range(ctx, &pb.RangeRequest{Key: key})
				}
				cancel()
				if err != nil {
					if !t0.Before(warmEnd) {
						w.errors++
						if w.firstError == "" {
							w.firstError = err.Error()
						}
					}
					time.Sleep(errorPause)
					continue
				}
				t1 := time.Now()
				if !t0.Before(warmEnd) && !t1.After(end) {
					w.ok++
					w.latencies = append(w.latencies, t1.Sub(t0).Nanoseconds())
				}
			}
		}(&workers[i], clients[i%len(clients)], rng)
	}
	wg.Wait()
	marks.Wait()
	return collect(workers, o, o.duration.Seconds(), cpu1-cpu0)
}

func collect(workers []worker, o options, window, cpu float64) result {
	r := result{
		Generator: "etcd_load (Go, gRPC)", Workload: o.workload, Concurrency: o.concurrency,
		Connections: o.conns, WindowS: window, CPUS: cpu, LatenciesNs: []int64{},
	}
	for i := range workers {
		w := &workers[i]
		r.Ok += w.ok
		r.Errors += w.errors
		if r.FirstError == nil && w.firstError != "" {
			msg := w.firstError
			r.FirstError = &msg
		}
		r.LatenciesNs = append(r.LatenciesNs, w.latencies...)
	}
	r.Summary = summarize(r.LatenciesNs)
	return r
}

func main() {
	o, err := parseFlags()
	if err != nil {
		fmt.Fprintln(os.Stderr, "etcd_load:", err)
		os.Exit(2)
	}
	dopts, err := dialOptions(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "etcd_load: TLS files:", err)
		os.Exit(2)
	}
	clients := make([]pb.KVClient, o.conns)
	for i := range clients {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		conn, err := grpc.DialContext(ctx, o.endpoints[0], dopts...)
		cancel()
		if err != nil {
			fmt.Fprintf(os.Stderr, "etcd_load: cannot connect to %s: %v\n", o.endpoints[0], err)
			os.Exit(1)
		}
		defer conn.Close()
		clients[i] = pb.NewKVClient(conn)
	}
	var r result
	if o.workload == "preload" {
		r = preload(clients, o)
	} else {
		r = load(clients, o)
	}
	out := json.NewEncoder(os.Stdout)
	if err := out.Encode(r); err != nil {
		fmt.Fprintln(os.Stderr, "etcd_load:", err)
		os.Exit(1)
	}
}
