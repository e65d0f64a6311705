package cli

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"k8s.io/client-go/rest"

	"github.com/stepflow-dev/stepflow/pkg/op"
	"github.com/stepflow-dev/stepflow/pkg/op/opset"
)

// runCLI runs the stepflow command in process with the standard ops (real
// HTTP; kube ops with no cluster) and returns its exit code and output.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	deps := Deps{Stdout: &out, Stderr: &errb, Ops: func(func() (*rest.Config, error)) (*op.Registry, error) {
		return opset.Catalog(), nil
	}}
	code = Main(deps, args)
	return code, out.String(), errb.String()
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDefTest runs `def test` over the case `def init` writes, changed in
// one way each: a case that matches passes; one that wants another
// outcome, call, param or output fails with what differs.
func TestDefTest(t *testing.T) {
	dir := t.TempDir()
	if code, _, stderr := runCLI(t, "def", "init", "cm", "--dir", dir); code != 0 {
		t.Fatalf("def init: %s", stderr)
	}
	basicFile := filepath.Join(dir, "testdata", "cm", "basic.txtar")
	basic, err := os.ReadFile(basicFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(basicFile); err != nil {
		t.Fatal(err)
	}
	const uid = "6f1c2a7e-0d3b-4c1e-9a55-2b8f0c4d9e11"
	cases := []struct {
		name string
		// from, to: the change made to the scaffolded case.
		from, to string
		// want are lines the output must hold; pass says whether the case
		// passes.
		want []string
		pass bool
	}{
		{name: "good", pass: true, want: []string{"ok   cm/good"}},
		{name: "wrong-outcome", from: `"outcome": "succeeded"`, to: `"outcome": "waiting"`,
			want: []string{"FAIL cm/wrong-outcome", "outcome: got succeeded, want waiting"}},
		{name: "wrong-call", from: `"calls": ["kube.apply apply"]`, to: `"calls": ["kube.read apply"]`,
			want: []string{"FAIL cm/wrong-call", "calls (-want +got):", `-`, `"kube.read apply"`, `+`, `"kube.apply apply"`}},
		{name: "wrong-param", from: `"metadata": {"name": "settings", "namespace": "apps"},`, to: `"metadata": {"name": "other", "namespace": "apps"},`,
			want: []string{"FAIL cm/wrong-param", "params of apply (-want +got):", `"other"`, `"settings"`}},
		{name: "wrong-output", from: `"outputs": {"uid": "` + uid + `"}`, to: `"outputs": {"uid": "another-uid"}`,
			want: []string{"FAIL cm/wrong-output", "output uid (-want +got):", `"another-uid"`, uid}},
		{name: "output-unreadable", from: `"valueFrom": "uid"`, to: `"valueFrom": "apply.nothing"`,
			want: []string{"FAIL cm/output-unreadable", "outcome: got failed (OutputError: step \"step\": output \"uid\":", "want succeeded"}},
		{name: "unrecorded-call", from: `"apply": {"returns"`, to: `"applied": {"returns"`,
			want: []string{"FAIL cm/unrecorded-call", "calls without a recorded result in ops.json: kube.apply apply"}},
		{name: "unknown-want-field", from: `"outcome": "succeeded"`, to: `"outcome": "succeeded", "outptus": {}`,
			want: []string{"FAIL cm/unknown-want-field", `want.json: json: unknown field "outptus"`}},
	}
	for _, tc := range cases {
		content := string(basic)
		if tc.from != "" {
			if !strings.Contains(content, tc.from) {
				t.Fatalf("%s: the scaffolded case has no %q", tc.name, tc.from)
			}
			content = strings.Replace(content, tc.from, tc.to, 1)
		}
		writeFile(t, filepath.Join(dir, "testdata", "cm", tc.name+".txtar"), content)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, "def", "test", dir, "--run", "^cm/"+tc.name+"$")
			t.Logf("stdout:\n%sstderr:\n%s", stdout, stderr)
			if (code == 0) != tc.pass {
				t.Errorf("exit code %d, want pass=%v", code, tc.pass)
			}
			if !tc.pass && !strings.Contains(stderr, "1 of 1 cases failed") {
				t.Errorf("stderr does not say how many cases failed")
			}
			for _, w := range tc.want {
				if !strings.Contains(stdout, w) {
					t.Errorf("output does not hold %q", w)
				}
			}
		})
	}
	t.Run("all", func(t *testing.T) {
		code, stdout, _ := runCLI(t, "def", "test", dir)
		if code == 0 {
			t.Error("exit code 0 with failing cases")
		}
		n := 0
		for _, l := range strings.Split(stdout, "\n") {
			if strings.HasPrefix(l, "FAIL ") || strings.HasPrefix(l, "ok   ") {
				n++
			}
		}
		if n != len(cases) {
			t.Errorf("%d result lines, want %d:\n%s", n, len(cases), stdout)
		}
	})
}

// TestDefTestLayout: cases without their definition, or a definition that
// names itself otherwise than its file, are errors, not skipped cases.
func TestDefTestLayout(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{name: "orphan cases", files: map[string]string{
			"testdata/gone/a.txtar": "-- want.json --\n{\"outcome\": \"succeeded\"}\n",
		}, want: "no gone.cue"},
		{name: "misnamed", files: map[string]string{
			"x.cue":              "\"y\": {type: \"workflow-step\"}\ntemplate: {parameter: {}}\n",
			"testdata/x/a.txtar": "-- want.json --\n{\"outcome\": \"succeeded\"}\n",
		}, want: `names itself "y"`},
		{name: "no cases", files: map[string]string{
			"x.cue": "\"x\": {type: \"workflow-step\"}\ntemplate: {parameter: {}}\n",
		}, want: "no test cases found"},
		{name: "no want.json", files: map[string]string{
			"x.cue":              "\"x\": {type: \"workflow-step\"}\ntemplate: {parameter: {}}\n",
			"testdata/x/a.txtar": "-- properties.json --\n{}\n",
		}, want: "no want.json"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for p, c := range tc.files {
				writeFile(t, filepath.Join(dir, p), c)
			}
			code, stdout, stderr := runCLI(t, "def", "test", dir)
			if code == 0 {
				t.Errorf("exit code 0, want an error; stdout:\n%s", stdout)
			}
			if !strings.Contains(stdout+stderr, tc.want) {
				t.Errorf("output does not say %q:\n%s%s", tc.want, stdout, stderr)
			}
		})
	}
}

// A definition that posts to a webhook and reads the answer.
const postDefinition = `import "vela/http"

"post-it": {
	type: "workflow-step"
	description: "Post to a URL."
}
template: {
	post: http.#HTTPPost & {
		$params: {
			url: parameter.url
			request: body: "{\"n\": \(parameter.n)}"
		}
	}
	answer: post.$returns.statusCode
	parameter: {
		url: string
		n:   *1 | int
	}
}
`

// TestDefRender: render shows the HTTP call with its decoded parameters
// and does not send it (the server counts no request), where step run,
// given the same definition, does send it.
func TestDefRender(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	dir := t.TempDir()
	def := filepath.Join(dir, "post-it.cue")
	writeFile(t, def, postDefinition)
	props := `{"url": "` + srv.URL + `/hook", "n": 7}`

	// The control: run for real, the call reaches the server.
	if code, stdout, stderr := runCLI(t, "step", "run", "-f", def, "--properties", props); code != 0 || hits.Load() != 1 {
		t.Fatalf("step run: exit %d, %d hits, want 0 and 1:\n%s%s", code, hits.Load(), stdout, stderr)
	}
	hits.Store(0)

	recorded := filepath.Join(dir, "recorded.json")
	writeFile(t, recorded, `{"post": {"returns": {"statusCode": 201, "body": ""}}}`)
	propsFile := filepath.Join(dir, "props.yaml")
	writeFile(t, propsFile, "url: "+srv.URL+"/hook\nn: 7\n")
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{name: "cue", args: []string{"-p", props}, want: []string{
			"// op calls, in order (none run; results absent unless recorded):",
			"//   http.do post (not run)",
			`"url":"` + srv.URL + `/hook"`,
			`body: "{\"n\": 7}"`,
			"answer: _ // answer: ",
		}},
		{name: "properties from a file, recorded result", args: []string{"-p", propsFile, "--ops", recorded}, want: []string{
			"//   http.do post (recorded)",
			"answer: 201",
		}},
		{name: "no properties", args: nil, want: []string{
			"// outcome, no op run: failed (ParameterError)",
			"// op calls: none",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, append([]string{"def", "render", "-f", def}, tc.args...)...)
			t.Logf("stdout:\n%s", stdout)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stdout, w) {
					t.Errorf("output does not hold %q", w)
				}
			}
		})
	}
	t.Run("json", func(t *testing.T) {
		code, stdout, stderr := runCLI(t, "def", "render", "-f", def, "-p", props, "-o", "json")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		var res DefRender
		if err := json.Unmarshal([]byte(stdout), &res); err != nil {
			t.Fatalf("%v:\n%s", err, stdout)
		}
		if len(res.Calls) != 1 {
			t.Fatalf("calls = %+v, want one", res.Calls)
		}
		c := res.Calls[0]
		params, _ := c.Params.(map[string]any)
		if c.Op != "http.do" || c.Path != "post" || c.Result != "not run" || params["url"] != srv.URL+"/hook" || params["method"] != "POST" {
			t.Errorf("call = %+v", c)
		}
	})
	if n := hits.Load(); n != 0 {
		t.Errorf("def render sent %d requests, want none", n)
	}
}

// TestDefInit: what def init writes passes def test and def vet at once,
// and a second init refuses and leaves the files as they were.
func TestDefInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "steps")
	code, stdout, stderr := runCLI(t, "def", "init", "notify-team", "--dir", dir)
	if code != 0 {
		t.Fatalf("def init: %s", stderr)
	}
	defFile := filepath.Join(dir, "notify-team.cue")
	caseFile := filepath.Join(dir, "testdata", "notify-team", "basic.txtar")
	for _, f := range []string{defFile, caseFile} {
		if !strings.Contains(stdout, "wrote "+f) {
			t.Errorf("def init does not say it wrote %s:\n%s", f, stdout)
		}
	}
	if code, stdout, stderr := runCLI(t, "def", "test", dir); code != 0 || !strings.Contains(stdout, "ok   notify-team/basic") {
		t.Errorf("def test after init: exit %d:\n%s%s", code, stdout, stderr)
	}
	if code, stdout, stderr := runCLI(t, "def", "vet", defFile); code != 0 || stdout != "ok notify-team\n" || stderr != "" {
		t.Errorf("def vet after init: exit %d:\nstdout %q\nstderr %q", code, stdout, stderr)
	}

	before, err := os.ReadFile(defFile)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, defFile, string(before)+"// edited\n")
	if err := os.Remove(caseFile); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runCLI(t, "def", "init", "notify-team", "--dir", dir)
	if code == 0 || !strings.Contains(stderr, defFile+" exists") {
		t.Errorf("second init: exit %d, stderr %q; want a refusal naming %s", code, stderr, defFile)
	}
	if after, _ := os.ReadFile(defFile); string(after) != string(before)+"// edited\n" {
		t.Error("second init changed the definition")
	}
	if _, err := os.Stat(caseFile); err == nil {
		t.Error("second init wrote the case although it refused")
	}

	for _, bad := range []string{"Notify", "notify_team", "x-"} {
		if code, _, stderr := runCLI(t, "def", "init", bad, "--dir", dir); code == 0 || !strings.Contains(stderr, "definition name") {
			t.Errorf("def init %q: exit %d, stderr %q; want a refusal", bad, code, stderr)
		}
	}
}
