package compat_test

// The notification step library on a real API server, modelled on
// kubevela/workflow's examples (request-and-notify.md, workflow-run/
// request.yaml, test-request.yaml, test-notification.yaml,
// test-print-message.yaml, chat-gpt.yaml): request, notification,
// webhook and print-message-in-status as shipped, chat-gpt and
// check-metrics as fixtures of ours with the upstream constructs. Slack,
// DingTalk, Lark, an OpenAI-like API, a webhook receiver and Prometheus
// are httptest servers counting hits; mail goes to a local SMTP server
// (pkg/op/email/emailtest). Every run uses the chart's default runner
// rights: reading the Secrets that hold URLs, tokens and passwords is
// among them.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/api/v1beta1"
	"github.com/stepflow-dev/stepflow/pkg/op/email/emailtest"
)

// hook is a fake webhook receiver: it keeps every request and answers
// with reply (200 "ok" by default).
type hook struct {
	*httptest.Server
	mu    sync.Mutex
	reqs  []hookRequest
	reply func(w http.ResponseWriter, r *http.Request, body []byte)
}

type hookRequest struct {
	Method, Path string
	Header       http.Header
	Body         []byte
}

func newHook(t *testing.T) *hook {
	t.Helper()
	h := &hook{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.reqs = append(h.reqs, hookRequest{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body})
		reply := h.reply
		h.mu.Unlock()
		if reply != nil {
			reply(w, r, body)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hook) requests() []hookRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookRequest(nil), h.reqs...)
}

// only returns the one request the hook got, or fails the test.
func (h *hook) only(t *testing.T, what string) hookRequest {
	t.Helper()
	rs := h.requests()
	if len(rs) != 1 {
		t.Fatalf("%s got %d requests, want 1", what, len(rs))
	}
	return rs[0]
}

// wantRun fails the test, showing the run's status, unless the run
// finished in phase.
func wantRun(t *testing.T, run *v1alpha1.WorkflowRun, phase v1alpha1.WorkflowRunPhase) {
	t.Helper()
	if run.Status.Phase != phase {
		b, _ := yaml.Marshal(run.Status)
		t.Fatalf("run %s: %s, want %s; status:\n%s", run.Name, run.Status.Phase, phase, b)
	}
}

// decodeJSON unmarshals a request body, or fails the test.
func decodeJSON(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", b, err)
	}
	return m
}

// createSecret creates Secret ns/name with data.
func createSecret(t *testing.T, ns, name string, data map[string]string) {
	t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, StringData: data}
	if err := env.Client.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
}

// installSteps creates each step definition (name → template) in ns and
// waits until it is Ready.
func installSteps(t *testing.T, ns string, defs map[string]string) {
	t.Helper()
	ctx := context.Background()
	for name, tmpl := range defs {
		def := &v1beta1.WorkflowStepDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		def.Spec.Schematic = &v1beta1.Schematic{CUE: &v1beta1.CUE{Template: tmpl}}
		if err := env.Client.Create(ctx, def); err != nil {
			t.Fatal(err)
		}
	}
	for name := range defs {
		deadline := time.Now().Add(30 * time.Second)
		for {
			var def v1beta1.WorkflowStepDefinition
			err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &def)
			c := metaCondition(def.Status.Conditions, v1beta1.ConditionReady)
			if err == nil && c != nil && c.Status == metav1.ConditionTrue {
				break
			}
			if err == nil && c != nil && c.Status == metav1.ConditionFalse {
				t.Fatalf("step definition %s is not Ready: %s", name, c.Message)
			}
			if time.Now().After(deadline) {
				t.Fatalf("step definition %s not Ready after 30s (err %v)", name, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// request-and-notify.md / workflow-run/request.yaml: a GET of a
// repository's JSON, its star count as an output (strconv in valueFrom),
// the output as Slack's message text; the failed-notification step, whose
// if reads status.request.failed, is skipped. Slack gets one message.
func TestRequestAndNotify(t *testing.T) {
	ns := newNamespace(t, "compat-request-notify")
	github := newHook(t)
	github.reply = func(w http.ResponseWriter, r *http.Request, _ []byte) {
		if r.URL.Path != "/repos/kubevela/workflow" {
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"message":"Not Found"}`)
			return
		}
		_, _ = io.WriteString(w, `{"full_name":"kubevela/workflow","stargazers_count":42}`)
	}
	slack := newHook(t)
	run := func(name, repo string) *v1alpha1.WorkflowRun {
		return waitFinished(t, ns, runYAML(t, ns, fmt.Sprintf(`
metadata: {name: %s}
spec:
  workflowSpec:
    steps:
    - name: request
      type: request
      properties:
        url: %s/repos/kubevela/%s
      outputs:
      - name: stars
        valueFrom: |
          import "strconv"
          "Current star count: " + strconv.FormatInt(response["stargazers_count"], 10)
    - name: notification
      type: notification
      inputs:
      - from: stars
        parameterKey: slack.message.text
      properties:
        slack:
          url:
            value: %s/services/T0/B0/x
    - name: failed-notification
      type: notification
      if: status.request.failed
      properties:
        slack:
          url:
            value: %s/services/T0/B0/x
          message:
            text: "Failed to request github"
`, name, github.URL, repo, slack.URL, slack.URL)))
	}

	ok := run("request-http", "workflow")
	wantRun(t, ok, v1alpha1.WorkflowRunSucceeded)
	wantStep(t, ok, "request", v1alpha1.WorkflowStepPhaseSucceeded)
	wantStep(t, ok, "notification", v1alpha1.WorkflowStepPhaseSucceeded)
	wantStep(t, ok, "failed-notification", v1alpha1.WorkflowStepPhaseSkipped)
	msg := slack.only(t, "Slack")
	if msg.Method != http.MethodPost || msg.Header.Get("Content-Type") != "application/json" {
		t.Errorf("Slack got %s with Content-Type %q", msg.Method, msg.Header.Get("Content-Type"))
	}
	if text := decodeJSON(t, msg.Body)["text"]; text != "Current star count: 42" {
		t.Errorf("Slack message text %q", text)
	}
	if n := len(github.requests()); n != 1 {
		t.Errorf("GitHub got %d requests, want 1", n)
	}

	// The repository does not exist: request fails (404) and the
	// failed-notification step tells Slack.
	bad := run("request-notfound", "notfound")
	wantRun(t, bad, v1alpha1.WorkflowRunFailed)
	if s := wantStep(t, bad, "request", v1alpha1.WorkflowStepPhaseFailed); !strings.Contains(s.Message, "status 404") {
		t.Errorf("request step message %q does not give the status", s.Message)
	}
	wantStep(t, bad, "failed-notification", v1alpha1.WorkflowStepPhaseSucceeded)
	rs := slack.requests()
	if len(rs) != 2 {
		t.Fatalf("Slack got %d requests in all, want 2", len(rs))
	}
	if text := decodeJSON(t, rs[1].Body)["text"]; text != "Failed to request github" {
		t.Errorf("Slack's second message %q", text)
	}
}

// test-request.yaml: a GET, a POST with a JSON body and a GET with
// headers of its own, then print-message-in-status.
func TestRequestMethodsAndHeaders(t *testing.T) {
	ns := newNamespace(t, "compat-request")
	httpbin := newHook(t)
	httpbin.reply = func(w http.ResponseWriter, r *http.Request, body []byte) {
		_ = json.NewEncoder(w).Encode(map[string]any{"method": r.Method, "json": json.RawMessage(orNull(body))})
	}
	createSecret(t, ns, "api-token", map[string]string{"bearer": "Bearer t0ken"})
	name := runYAML(t, ns, fmt.Sprintf(`
metadata: {name: test-request}
spec:
  workflowSpec:
    steps:
    - name: get-github-user
      type: request
      properties: {url: "%[1]s/users/octocat", method: GET}
    - name: post-webhook
      type: request
      properties:
        url: "%[1]s/post"
        method: POST
        body: {message: "Workflow step completed", status: success}
    - name: api-call-with-headers
      type: request
      properties:
        url: "%[1]s/headers"
        method: GET
        header: {User-Agent: "KubeVela-Workflow/1.0", Accept: application/json}
        headersFromSecret: [{header: Authorization, secret: api-token, key: bearer}]
    - name: complete
      type: print-message-in-status
      properties: {message: "All HTTP requests completed"}
`, httpbin.URL))
	run := waitFinished(t, ns, name)
	wantRun(t, run, v1alpha1.WorkflowRunSucceeded)
	if s := wantStep(t, run, "complete", v1alpha1.WorkflowStepPhaseSucceeded); s.Message != "All HTTP requests completed" {
		t.Errorf("complete's message %q", s.Message)
	}
	byPath := map[string]hookRequest{}
	for _, r := range httpbin.requests() {
		if _, dup := byPath[r.Path]; dup {
			t.Errorf("%s %s was sent twice", r.Method, r.Path)
		}
		byPath[r.Path] = r
	}
	if r := byPath["/post"]; r.Method != http.MethodPost || decodeJSON(t, r.Body)["status"] != "success" ||
		r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("POST: %s %q Content-Type %q", r.Method, r.Body, r.Header.Get("Content-Type"))
	}
	h := byPath["/headers"].Header
	if h.Get("User-Agent") != "KubeVela-Workflow/1.0" || h.Get("Accept") != "application/json" || h.Get("Authorization") != "Bearer t0ken" {
		t.Errorf("headers sent: %v", h)
	}
	if len(byPath) != 3 {
		t.Errorf("httpbin got %d distinct requests, want 3: %v", len(byPath), byPath)
	}
}

func orNull(b []byte) []byte {
	if len(b) == 0 {
		return []byte("null")
	}
	return b
}

// test-notification.yaml, with every channel of notification: Slack's
// URL from a Secret, DingTalk and Lark by value, and an email whose SMTP
// password the email op reads from a Secret. Each gets exactly one
// message; the print-message-in-status step after it shows its message.
func TestNotificationAllChannels(t *testing.T) {
	ns := newNamespace(t, "compat-notification")
	slack, ding, lark := newHook(t), newHook(t), newHook(t)
	ding.reply = func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		_, _ = io.WriteString(w, `{"errcode":0,"errmsg":"ok"}`)
	}
	lark.reply = func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		_, _ = io.WriteString(w, `{"StatusCode":0,"code":0,"msg":"success"}`)
	}
	smtp := emailtest.Start(t, "bot@example.com", "app-pa55")
	createSecret(t, ns, "hooks", map[string]string{"slack": slack.URL + "/services/T0/B0/secret"})
	createSecret(t, ns, "smtp", map[string]string{"password": "app-pa55"})
	name := runYAML(t, ns, fmt.Sprintf(`
metadata: {name: test-notification}
spec:
  workflowSpec:
    steps:
    - name: slack-notification
      type: notification
      properties:
        slack:
          url: {secretRef: {name: hooks, key: slack}}
          message: {text: "🚀 Testing notification step type - Message from Stepflow!"}
        dingding:
          url: {value: "%s/robot/send?access_token=t"}
          message:
            msgtype: markdown
            markdown: {title: Release, text: "## released"}
            at: {isAtAll: true}
        lark:
          url: {value: "%s/open-apis/bot/v2/hook/x"}
          message: {msg_type: text, content: '{"text":"released"}'}
        email:
          from:
            address: bot@example.com
            alias: Release Bot
            password: {secretRef: {name: smtp, key: password}}
            host: %s
            port: %d
          to: [ops@example.com, dev@example.com]
          content: {subject: Released, body: "<p>released</p>"}
    - name: complete
      type: print-message-in-status
      properties: {message: "Notification sent via notification type"}
`, ding.URL, lark.URL, smtp.Host, smtp.Port))
	run := waitFinished(t, ns, name)
	wantRun(t, run, v1alpha1.WorkflowRunSucceeded)
	if s := wantStep(t, run, "complete", v1alpha1.WorkflowStepPhaseSucceeded); s.Message != "Notification sent via notification type" {
		t.Errorf("complete's message %q", s.Message)
	}
	if r := slack.only(t, "Slack"); r.Path != "/services/T0/B0/secret" || !strings.Contains(decodeJSON(t, r.Body)["text"].(string), "Testing notification") {
		t.Errorf("Slack got %s %q", r.Path, r.Body)
	}
	d := decodeJSON(t, ding.only(t, "DingTalk").Body)
	if d["msgtype"] != "markdown" || d["markdown"].(map[string]any)["title"] != "Release" || d["at"].(map[string]any)["isAtAll"] != true {
		t.Errorf("DingTalk got %v", d)
	}
	if l := decodeJSON(t, lark.only(t, "Lark").Body); l["msg_type"] != "text" || l["content"] != `{"text":"released"}` {
		t.Errorf("Lark got %v", l)
	}
	msgs := smtp.Messages()
	if len(msgs) != 1 {
		t.Fatalf("the SMTP server got %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if m.User != "bot@example.com" || m.From != "bot@example.com" || strings.Join(m.To, ",") != "ops@example.com,dev@example.com" ||
		!strings.Contains(m.Data, "Subject: Released") || !strings.Contains(m.Data, `From: "Release Bot" <bot@example.com>`) {
		t.Errorf("mail: user %q from %q to %v\n%s", m.User, m.From, m.To, m.Data)
	}
}

// A DingTalk robot that refuses the message (200 with an errcode) fails
// the step, naming the error; a retry of the step would send again.
func TestNotificationRefused(t *testing.T) {
	ns := newNamespace(t, "compat-notification-refused")
	ding := newHook(t)
	ding.reply = func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		_, _ = io.WriteString(w, `{"errcode":310000,"errmsg":"keywords not in content"}`)
	}
	name := runYAML(t, ns, fmt.Sprintf(`
metadata: {name: refused}
spec:
  workflowSpec:
    steps:
    - name: tell
      type: notification
      properties:
        dingding:
          url: {value: "%s/robot/send"}
          message: {text: {content: hello}}
`, ding.URL))
	run := waitFinished(t, ns, name)
	wantRun(t, run, v1alpha1.WorkflowRunFailed)
	if s := wantStep(t, run, "tell", v1alpha1.WorkflowStepPhaseFailed); !strings.Contains(s.Message, "keywords not in content") {
		t.Errorf("step message %q does not say why", s.Message)
	}
	if n := len(ding.requests()); n != 1 {
		t.Errorf("DingTalk got %d requests, want 1", n)
	}
}

// A step that sends a mail with the legacy flat op.#SendEmail and then
// waits on a gate (an HTTP GET, sent again at every evaluation) is
// evaluated again and again while it waits; the mail is sent once and
// replayed from the journal afterwards.
func TestEmailSentOnceWhileTheStepWaits(t *testing.T) {
	ns := newNamespace(t, "compat-email-once")
	smtp := emailtest.Start(t, "bot@example.com", "pw")
	gate := newHook(t)
	var mu sync.Mutex
	open := false
	gate.reply = func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		mu.Lock()
		defer mu.Unlock()
		if open {
			_, _ = io.WriteString(w, "open")
			return
		}
		_, _ = io.WriteString(w, "closed")
	}
	installSteps(t, ns, map[string]string{"mail-then-wait": `import "vela/op"

mail: op.#SendEmail & {
	from: {address: "bot@example.com", password: "pw", host: parameter.host, port: parameter.port}
	to: ["ops@example.com"]
	content: {subject: "started", body: "the release started"}
}
gate: op.#HTTPGet & {url: parameter.gate}
wait: op.#ConditionalWait & {
	continue: gate.response.body == "open"
	message:  "waiting for the gate"
}
parameter: {
	host: string
	port: int
	gate: string
}
`})
	name := runYAML(t, ns, fmt.Sprintf(`
metadata: {name: mail-once}
spec:
  workflowSpec:
    steps:
    - {name: mail, type: mail-then-wait, properties: {host: %s, port: %d, gate: "%s/gate"}}
`, smtp.Host, smtp.Port, gate.URL))
	// Each evaluation asks the gate once.
	deadline := time.Now().Add(time.Minute)
	for len(gate.requests()) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("the gate was asked %d times in a minute, want 3", len(gate.requests()))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := smtp.Count(); n != 1 {
		t.Fatalf("over %d evaluations of the step, the SMTP server got %d messages, want 1", len(gate.requests()), n)
	}
	mu.Lock()
	open = true
	mu.Unlock()
	run := waitFinished(t, ns, name)
	wantRun(t, run, v1alpha1.WorkflowRunSucceeded)
	if n, s := smtp.Count(), smtp.Sessions(); n != 1 || s != 1 {
		t.Errorf("over %d evaluations, the SMTP server got %d messages in %d sessions, want 1 in 1", len(gate.requests()), n, s)
	}
}

// webhook, KubeVela's form: the URL from a Secret, no data (the run's
// identity is sent).
func TestWebhookFromSecret(t *testing.T) {
	ns := newNamespace(t, "compat-webhook")
	receiver := newHook(t)
	createSecret(t, ns, "hooks", map[string]string{"release": receiver.URL + "/hooks/release-token"})
	name := runYAML(t, ns, `
metadata: {name: tell}
spec:
  workflowSpec:
    steps:
    - {name: webhook, type: webhook, properties: {url: {secretRef: {name: hooks, key: release}}}}
`)
	run := waitFinished(t, ns, name)
	wantRun(t, run, v1alpha1.WorkflowRunSucceeded)
	r := receiver.only(t, "the webhook")
	body := decodeJSON(t, r.Body)
	if r.Path != "/hooks/release-token" || body["run"] != "tell" || body["namespace"] != ns || body["step"] != "webhook" {
		t.Errorf("webhook got %s %v", r.Path, body)
	}
}

// test-print-message.yaml: messages around a timed suspend and an
// apply-object; each print-message-in-status step shows its own.
func TestPrintMessageInStatus(t *testing.T) {
	ns := newNamespace(t, "compat-print-message")
	name := runYAML(t, ns, `
metadata: {name: test-print-message}
spec:
  workflowSpec:
    steps:
    - {name: start-message, type: print-message-in-status, properties: {message: "Workflow started successfully"}}
    - {name: processing-step, type: suspend, properties: {duration: 1s}}
    - {name: progress-message, type: print-message-in-status, properties: {message: "Processing completed, moving to next step"}}
    - name: deploy-config
      type: apply-object
      properties:
        value: {apiVersion: v1, kind: ConfigMap, metadata: {name: printed}, data: {a: b}}
    - {name: final-message, type: print-message-in-status, properties: {message: "All workflow steps completed!"}}
`)
	run := waitFinished(t, ns, name)
	wantRun(t, run, v1alpha1.WorkflowRunSucceeded)
	for step, want := range map[string]string{
		"start-message":    "Workflow started successfully",
		"progress-message": "Processing completed, moving to next step",
		"final-message":    "All workflow steps completed!",
	} {
		if s := wantStep(t, run, step, v1alpha1.WorkflowStepPhaseSucceeded); s.Message != want {
			t.Errorf("%s's message %q, want %q", step, s.Message, want)
		}
	}
}

// chatGPT is a fixture with the constructs of KubeVela's chat-gpt step
// type (flat dialect: a token from a value or a Secret through op.#Steps,
// op.#Read and op.#ConvertString; a POST of a prompt built from the
// input; the response parsed, a failure message read from it, the answer
// as result and logged), posting to a URL the run gives instead of
// OpenAI's.
const chatGPT = `import (
	"vela/op"
	"encoding/json"
	"encoding/base64"
)

token: op.#Steps & {
	if parameter.token.value != _|_ {
		value: parameter.token.value
	}
	if parameter.token.secretRef != _|_ {
		read: op.#Read & {
			value: {
				apiVersion: "v1"
				kind:       "Secret"
				metadata: {name: parameter.token.secretRef.name, namespace: context.namespace}
			}
		}
		decoded: op.#ConvertString & {bt: base64.Decode(null, read.value.data[parameter.token.secretRef.key])}
		value: decoded.str
	}
}
_content: [
	if parameter.prompt.type == "custom" {parameter.prompt.content},
	if parameter.prompt.type == "audit" {"""
		Inspect this Kubernetes object for security misconfigurations.
		Answer in \(parameter.prompt.lang).
		---
		\(json.Marshal(parameter.prompt.content))
		"""},
	if parameter.prompt.type == "diagnose" {"""
		What is wrong with this Kubernetes object? Answer in \(parameter.prompt.lang).
		---
		\(json.Marshal(parameter.prompt.content))
		"""},
][0]
http: op.#HTTPDo & {
	method: "POST"
	url:    parameter.url
	request: {
		timeout: parameter.timeout
		body: json.Marshal({model: parameter.model, messages: [{role: "user", content: _content}]})
		header: {
			"Content-Type": "application/json"
			Authorization:  "Bearer \(token.value)"
		}
	}
}
response: json.Unmarshal(http.response.body)
fail: op.#Steps & {
	if http.response.statusCode >= 400 {
		requestFail: op.#Fail & {
			message: "\(http.response.statusCode): failed to request: \(response.error.message)"
		}
	}
}
result: response.choices[0].message.content
log: op.#Log & {data: result}
parameter: {
	url: string
	token: close({value: string}) | close({secretRef: {name: string, key: string}})
	model: *"gpt-3.5-turbo" | string
	prompt: {
		type:    *"custom" | "diagnose" | "audit"
		lang:    *"English" | "Chinese"
		content: string | {...}
	}
	timeout: *"30s" | string
}
`

// chat-gpt.yaml: an applied object goes, as an output, into an audit by
// an OpenAI-like API whose token is in a Secret; the diagnose step, for a
// failed apply, is skipped. The API is asked once, with the token and a
// prompt holding the object, and its answer reaches the next step.
func TestChatGPT(t *testing.T) {
	ns := newNamespace(t, "compat-chat-gpt")
	installSteps(t, ns, map[string]string{"chat-gpt": chatGPT})
	createSecret(t, ns, "chat-gpt-token-secret", map[string]string{"token": "sk-test"})
	openai := newHook(t)
	openai.reply = func(w http.ResponseWriter, r *http.Request, _ []byte) {
		if r.Header.Get("Authorization") != "Bearer sk-test" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":{"message":"Incorrect API key provided"}}`)
			return
		}
		_, _ = io.WriteString(w, `{"choices":[{"message":{"role":"assistant","content":"没有发现问题"}}]}`)
	}
	name := runYAML(t, ns, fmt.Sprintf(`
metadata: {name: chat-gpt}
spec:
  workflowSpec:
    steps:
    - name: apply
      type: apply-object
      properties:
        value: {apiVersion: v1, kind: ConfigMap, metadata: {name: audited}, data: {password: hunter2}}
      outputs:
      - {name: resource, valueFrom: apply.$returns.value}
    - name: chat-diagnose
      if: status.apply.failed
      type: chat-gpt
      inputs: [{from: resource, parameterKey: prompt.content}]
      properties: {url: "%[1]s/v1/chat/completions", token: {value: wrong}, prompt: {type: diagnose}}
    - name: chat-audit
      if: status.apply.succeeded
      type: chat-gpt
      inputs: [{from: resource, parameterKey: prompt.content}]
      outputs: [{name: answer, valueFrom: result}]
      properties:
        url: "%[1]s/v1/chat/completions"
        token: {secretRef: {name: chat-gpt-token-secret, key: token}}
        prompt: {type: audit, lang: Chinese}
    - name: show
      type: print-message-in-status
      inputs: [{from: answer, parameterKey: message}]
`, openai.URL))
	run := waitFinished(t, ns, name)
	wantRun(t, run, v1alpha1.WorkflowRunSucceeded)
	wantStep(t, run, "chat-diagnose", v1alpha1.WorkflowStepPhaseSkipped)
	wantStep(t, run, "chat-audit", v1alpha1.WorkflowStepPhaseSucceeded)
	if s := wantStep(t, run, "show", v1alpha1.WorkflowStepPhaseSucceeded); s.Message != "没有发现问题" {
		t.Errorf("the answer reached the next step as %q", s.Message)
	}
	r := openai.only(t, "the OpenAI-like API")
	var body struct {
		Model    string `json:"model"`
		Messages []struct{ Role, Content string }
	}
	if err := json.Unmarshal(r.Body, &body); err != nil || len(body.Messages) != 1 {
		t.Fatalf("request body %s: %v", r.Body, err)
	}
	c := body.Messages[0].Content
	if body.Model != "gpt-3.5-turbo" || body.Messages[0].Role != "user" || !strings.Contains(c, "security misconfigurations") ||
		!strings.Contains(c, "Answer in Chinese") || !strings.Contains(c, `"name":"audited"`) {
		t.Errorf("request: model %q, message %q", body.Model, c)
	}
}

// checkMetrics is a fixture with the constructs of KubeVela's
// check-metrics step type: metrics.#PromCheck, a fail on its failed and a
// wait on its result, each with its message.
const checkMetrics = `import (
	"vela/builtin"
	"vela/metrics"
)

check: metrics.#PromCheck & {
	$params: {
		query: parameter.query
		if parameter.metricEndpoint != _|_ {
			metricEndpoint: parameter.metricEndpoint
		}
		condition:    parameter.condition
		duration:     parameter.duration
		failDuration: parameter.failDuration
	}
}
fail: {
	if check.$returns.failed {
		breakWorkflow: builtin.#Fail & {$params: message: check.$returns.message}
	}
}
wait: builtin.#ConditionalWait & {
	$params: {
		continue: check.$returns.result
		message:  check.$returns.message
	}
}
parameter: {
	query:           string
	metricEndpoint?: string
	condition:       *">=1" | string
	duration:        *"5m" | string
	failDuration:    *"2m" | string
}
`

// checkMetricsFlat is checkMetrics in the legacy flat dialect
// (op.#PromCheck, its results in result, failed and message).
const checkMetricsFlat = `import "vela/op"

check: op.#PromCheck & {
	query:          parameter.query
	metricEndpoint: parameter.metricEndpoint
	condition:      parameter.condition
	duration:       parameter.duration
	failDuration:   parameter.failDuration
}
fail: op.#Steps & {
	if check.failed {
		breakWorkflow: op.#Fail & {message: check.message}
	}
}
wait: op.#ConditionalWait & {
	continue: check.result
	message:  check.message
}
parameter: {
	query:          string
	metricEndpoint: string
	condition:      string
	duration:       string
	failDuration:   string
}
`

// check-metrics against a Prometheus-shaped fake: a healthy ratio holds
// for the duration and the step succeeds; an unhealthy one fails the step
// after failDuration (this one written in the flat dialect). Each
// evaluation queries once; the step waits between them.
func TestCheckMetrics(t *testing.T) {
	ns := newNamespace(t, "compat-check-metrics")
	installSteps(t, ns, map[string]string{"check-metrics": checkMetrics, "check-metrics-flat": checkMetricsFlat})
	var mu sync.Mutex
	queries := map[string]int{}
	prom := newHook(t)
	prom.reply = func(w http.ResponseWriter, r *http.Request, body []byte) {
		_ = r.ParseForm()
		q := r.Form.Get("query")
		if q == "" {
			// A POST's form was read by the hook already.
			if vals, err := url.ParseQuery(string(body)); err == nil {
				q = vals.Get("query")
			}
		}
		mu.Lock()
		queries[q]++
		mu.Unlock()
		value := "0.1"
		if q == "sum(healthy)" {
			value = "0.99"
		}
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,%q]}]}}`, value)
	}
	name := runYAML(t, ns, fmt.Sprintf(`
metadata: {name: check}
spec:
  workflowSpec:
    steps:
    - name: healthy
      type: check-metrics
      properties: {query: 'sum(healthy)', metricEndpoint: "%[1]s", condition: ">=0.95", duration: 2s, failDuration: 1m}
    - name: unhealthy
      type: check-metrics-flat
      properties: {query: 'sum(unhealthy)', metricEndpoint: "%[1]s", condition: ">=0.95", duration: 1m, failDuration: 2s}
`, prom.URL))
	run := waitFinished(t, ns, name)
	wantRun(t, run, v1alpha1.WorkflowRunFailed)
	wantStep(t, run, "healthy", v1alpha1.WorkflowStepPhaseSucceeded)
	s := wantStep(t, run, "unhealthy", v1alpha1.WorkflowStepPhaseFailed)
	if !strings.Contains(s.Message, "The metric check has failed") || !strings.Contains(s.Message, `does not meet ">=0.95"`) {
		t.Errorf("unhealthy's message %q", s.Message)
	}
	mu.Lock()
	defer mu.Unlock()
	if queries["sum(healthy)"] < 2 || queries["sum(unhealthy)"] < 2 {
		t.Errorf("queries %v: each check must have been evaluated at least twice (first seen, then held long enough)", queries)
	}
}
