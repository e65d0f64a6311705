package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"text/tabwriter"
	"time"
)

// report is what one load measured.
type report struct {
	options options
	// store is how long storing the runs took.
	store time.Duration
	// cacheSync is how long the server's cache took to sync over them,
	// heap the Go heap in use after it (this process: the server and the
	// harness).
	cacheSync time.Duration
	heap      uint64
	lists     []listResult
	launch    []launchResult
}

type listResult struct {
	app, share string
	matching   int
	latencies  []time.Duration
}

type launchResult struct {
	clients int
	// requests are the server's requests to the API server during the
	// launches, by method and response code.
	requests  map[string]int
	elapsed   time.Duration
	latencies []time.Duration
}

// quantile is the q-quantile of sorted ds (nearest rank).
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func (r *report) print(w io.Writer) {
	o := r.options
	fmt.Fprintf(w, "\nstepflow REST API under load: %d runs stored in namespace %s\n", o.runs, loadNamespace)
	if r.store > 0 {
		fmt.Fprintf(w, "  stored in %s (%.0f runs/s, %d clients, created directly)\n", r.store.Round(time.Millisecond), float64(o.runs)/r.store.Seconds(), o.parallel)
	}
	if r.cacheSync > 0 {
		fmt.Fprintf(w, "  server cache synced in %s; Go heap after sync %.1f MiB\n", r.cacheSync.Round(time.Millisecond), float64(r.heap)/(1<<20))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\nrequest\tmatching\trequests\tp50\tp99\tmax\t")
	for _, l := range r.lists {
		s := slices.Clone(l.latencies)
		slices.Sort(s)
		fmt.Fprintf(tw, "GET /workflow?appId=%s&pageSize=%d (%s)\t%d\t%d\t%s\t%s\t%s\t\n", l.app, o.pageSize, l.share, l.matching, len(s),
			ms(quantile(s, .5)), ms(quantile(s, .99)), ms(quantile(s, 1)))
	}
	for _, l := range r.launch {
		s := slices.Clone(l.latencies)
		slices.Sort(s)
		fmt.Fprintf(tw, "POST /workflow/launch (%d clients)\t\t%d\t%s\t%s\t%s\t\n", l.clients, len(s), ms(quantile(s, .5)), ms(quantile(s, .99)), ms(quantile(s, 1)))
	}
	_ = tw.Flush()
	for _, l := range r.launch {
		if n := len(l.latencies); n > 0 {
			fmt.Fprintf(w, "launches, %d clients: %d in %s = %.1f launches/s; the server sent the API server, per launch:", l.clients, n, l.elapsed.Round(time.Millisecond), float64(n)/l.elapsed.Seconds())
			keys := slices.Sorted(maps.Keys(l.requests))
			for _, k := range keys {
				fmt.Fprintf(w, " %s ×%.2f", k, float64(l.requests[k])/float64(n))
			}
			fmt.Fprintln(w)
		}
	}
}
