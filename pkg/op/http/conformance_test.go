package http

import (
	"io"
	nethttp "net/http"
	"testing"

	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/optest"
)

func TestConformance(t *testing.T) {
	srv := serve(t, func(w nethttp.ResponseWriter, r *nethttp.Request) {
		w.Header().Set("X-Reply", "yes")
		_, _ = io.WriteString(w, "hello")
	})
	slow, inFlight := optest.BlockingServer(t)
	slowPost, postInFlight := optest.BlockingServer(t)
	optest.Run(t, optest.Suite{
		New: func() op.Family { return New(Options{}) },
		// An endpoint that answers only when the call gives up.
		Blocking: []optest.Blocking{
			{Name: "slow GET", Do: "do", InFlight: inFlight,
				Params: func() any { return &Params{Method: "GET", URL: slow + "/status"} }},
			{Name: "slow POST", Do: "do", InFlight: postInFlight,
				Params: func() any { return &Params{Method: "POST", URL: slowPost + "/notify", Request: Request{Body: "hi"}} }},
		},
		Cases: []optest.Case{{
			Name:   "GET",
			Do:     "do",
			Params: func() any { return &Params{Method: "GET", URL: srv.URL + "/status"} },
			// The Date header moves with the clock.
			Normalize: func(v any) any {
				r := v.(Returns)
				delete(r.Header, "Date")
				return r
			},
		}, {
			Name:   "POST",
			Do:     "do",
			Params: func() any { return &Params{Method: "POST", URL: srv.URL + "/notify", Request: Request{Body: "hi"}} },
		}, {
			Name:    "invalid URL",
			Do:      "do",
			Params:  func() any { return &Params{URL: "not a url"} },
			Invalid: true,
		}, {
			Name:    "invalid method",
			Do:      "do",
			Params:  func() any { return &Params{Method: "BREW", URL: srv.URL} },
			Invalid: true,
		}},
	})
}
