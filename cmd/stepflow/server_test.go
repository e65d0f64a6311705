package main

import (
	"strings"
	"testing"
)

func TestServerOptionsCheck(t *testing.T) {
	for _, tc := range []struct {
		listen, auth, cert, key string
		refused                 string // "" when accepted
	}{
		{listen: "127.0.0.1:8080", auth: "none"},
		{listen: "[::1]:8080", auth: "none"},
		{listen: "localhost:8080", auth: "none"},
		{listen: ":8080", auth: "none", refused: "loopback"},
		{listen: "0.0.0.0:8080", auth: "none", refused: "loopback"},
		{listen: "10.0.0.5:8080", auth: "none", refused: "loopback"},
		{listen: "localhost.evil.example:8080", auth: "none", refused: "loopback"},
		{listen: ":8080", auth: "kubernetes"},
		{listen: ":8080", auth: "ldap", refused: "want kubernetes or none"},
		{listen: ":8443", auth: "kubernetes", cert: "tls.crt", refused: "go together"},
		{listen: ":8443", auth: "kubernetes", cert: "tls.crt", key: "tls.key"},
	} {
		o := serverOptions{listen: tc.listen, auth: tc.auth, tlsCert: tc.cert, tlsKey: tc.key}
		err := o.check()
		switch {
		case tc.refused == "" && err != nil:
			t.Errorf("--listen %s --auth %s: refused: %v", tc.listen, tc.auth, err)
		case tc.refused != "" && (err == nil || !strings.Contains(err.Error(), tc.refused)):
			t.Errorf("--listen %s --auth %s: got %v, want an error saying %q", tc.listen, tc.auth, err, tc.refused)
		}
	}
}
