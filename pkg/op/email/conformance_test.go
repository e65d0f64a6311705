package email_test

import (
	"net"
	"testing"

	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/email"
	"github.com/stepflow-dev/stepflow/pkg/op/email/emailtest"
	"github.com/stepflow-dev/stepflow/pkg/op/optest"
)

func TestConformance(t *testing.T) {
	srv := emailtest.Start(t, "", "")
	host, port, inFlight := silentServer(t)
	optest.Run(t, optest.Suite{
		New: func() op.Family { return email.New(email.Options{}) },
		Blocking: []optest.Blocking{{
			Name: "server that never greets", Do: "send", InFlight: inFlight,
			Params: func() any {
				return &email.Params{From: email.From{Address: "bot@example.com", Host: host, Port: port},
					To: []string{"ops@example.com"}, Content: email.Content{Subject: "s", Body: "b"}}
			},
		}},
		Cases: []optest.Case{{
			Name: "send",
			Do:   "send",
			Params: func() any {
				return &email.Params{From: email.From{Address: "bot@example.com", Host: srv.Host, Port: srv.Port},
					To: []string{"ops@example.com"}, Content: email.Content{Subject: "s", Body: "b"}}
			},
		}, {
			Name: "invalid sender",
			Do:   "send",
			Params: func() any {
				return &email.Params{From: email.From{Address: "bot", Host: srv.Host, Port: srv.Port}, To: []string{"ops@example.com"}}
			},
			Invalid: true,
		}},
	})
}

// silentServer accepts connections and never says a word, as an SMTP
// server that hangs before its greeting; it signals each connection.
func silentServer(t *testing.T) (host string, port int, inFlight <-chan struct{}) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	arrived := make(chan struct{}, 16)
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
			select {
			case arrived <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		<-done
		for _, c := range conns {
			_ = c.Close()
		}
	})
	a := l.Addr().(*net.TCPAddr)
	return a.IP.String(), a.Port, arrived
}
