// Package netfence decides which network destinations the HTTP ops of a
// step may reach. A Policy is built once from a Config and asked about
// every connection.
//
// A destination is a host name (as written in the URL, "" for an IP
// literal) and the address it resolved to (IP and port). A rule matches
// either addresses (a CIDR, for the API server with a port) or host names
// (a glob in path.Match syntax, case-insensitive: "*.corp.example"). The
// rules are tried in this order, and the first that matches decides:
//
//  1. the operator's denies (Config.DenyCIDRs, Config.DenyHosts);
//  2. the built-in API server denies: the addresses of Config.APIServers
//     (the host of the controller's rest.Config, resolved when the Policy
//     is built, and in a cluster the kubernetes.default service IP). No
//     allow opens them: an HTTP step must not borrow the way to the API
//     server that only kube ops are meant to take. The controller adds
//     the addresses behind the service, from its EndpointSlice;
//  3. the operator's allows (Config.AllowCIDRs, Config.AllowHosts);
//  4. the other built-in denies: link-local 169.254.0.0/16 and fe80::/10,
//     where cloud metadata services live, and with Config.DenyLoopback (a
//     cluster install) loopback 127.0.0.0/8 and ::1 and the unspecified
//     addresses 0.0.0.0/8 and ::, which reach the local host too;
//  5. anything else is allowed.
//
// So an operator's deny always wins, an operator's allow is an exception
// to the built-in denies of step 4 (`make run` and the tests allow
// 127.0.0.0/8 that way), and the API server is never reachable.
//
// Where the check runs:
//
//   - At dial time, on the address the name resolved to, in the
//     net.Dialer's Control hook: after the socket exists, before it sends
//     a packet (Policy.DialContext). A name that resolves to an allowed
//     address now and a denied one later (DNS rebinding) is checked on
//     each connection, and so is every hop of a redirect. Host name rules
//     are checked once before the name is resolved, and again with the
//     address.
//   - On a URL (CheckURL), on what the URL alone shows: its host name, or
//     its IP literal. The HTTP op checks each request and each redirect
//     this way for a clear message.
//   - Through a proxy, the dial goes to the proxy, which resolves the
//     target's name itself. CheckLookup resolves it here too and checks
//     those addresses before the request goes out; what the proxy's own
//     lookup returns the fence cannot see.
//
// A refusal is a *DeniedError that names the destination and the rule, in
// the words of the Config ("deny-cidr 10.0.0.0/8") or of the built-in rule
// ("link-local 169.254.0.0/16").
package netfence
