// Package email is the "email" op family: one op, send, that sends one
// mail over SMTP. Its CUE schema is stdlib/vela/email (#SendEmail,
// $params) and, in the legacy flat dialect, #SendEmail in stdlib/vela/op;
// both decode into the one Params struct, with KubeVela's field names
// (from: address, alias, password, host, port; to; content: subject,
// body).
//
// The model:
//
//   - A call is one SMTP session: connect, STARTTLS when the server offers
//     it (port 465 speaks TLS from the start), AUTH PLAIN when the server
//     offers it and a password is given, one MAIL FROM, a RCPT TO for each
//     address of to, the message, QUIT. The body is sent as text/html, as
//     KubeVela sends it. $returns is {messageId}.
//   - send is op.Effect: the executor (pkg/journal) sends it once per step
//     attempt. When the session ends with the message accepted, the
//     journal records the call's $returns under (step attempt, op path)
//     before the step goes on; every later evaluation of the step (a wait
//     further down the template, a controller restart) replays that record
//     and does not connect again. A call that fails records nothing and is
//     sent again on the next evaluation. The one gap is a crash between the
//     server's acceptance and the record: the next evaluation sends again.
//     The Message-ID is derived from (run UID, step attempt, op path), so a
//     receiver can tell such a repeat from a new mail.
//   - The connection is fenced like the HTTP ops' (pkg/netfence,
//     Options.Fence): the host name is checked before it is resolved and
//     each address it resolves to before a packet is sent, so SMTP cannot
//     reach what HTTP may not (the API server, link-local metadata
//     services, loopback in a cluster install).
//   - The password is given in from.password or read from a Secret in the
//     step's namespace (from.passwordFromSecret), as the step's identity.
//     It is sent only inside AUTH PLAIN, which net/smtp refuses over a
//     connection that is neither TLS nor to localhost. It never appears in
//     an error, a message or $returns.
//   - Errors say how they are handled. Bad parameters (addresses, host,
//     port), a destination the fence denies, and an SMTP reply in the 5xx
//     range (authentication refused, recipient unknown) are op.Permanent.
//     No connection, a timeout and a 4xx reply are plain errors: a retry
//     may pass.
package email
