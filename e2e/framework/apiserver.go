package framework

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// apiServerStart bounds how long `stepflow server` may take to print its
// address and answer /readyz.
const apiServerStart = time.Minute

// servingLine is what `stepflow server` prints once it listens.
var servingLine = regexp.MustCompile(`stepflow server: serving (https?://\S+)`)

// APIServer is `stepflow server` running as a process of its own, with
// --auth kubernetes, against the framework's control plane.
type APIServer struct {
	// URL is where it serves, http://127.0.0.1:PORT.
	URL string
	// LogPath is the file its output goes to.
	LogPath string

	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// StartAPIServer starts `stepflow server --auth kubernetes` on a free
// loopback port, launches and lists defaulting to namespace ns, and waits
// until it answers /readyz (its cache has synced). args are added to its
// flags.
func (f *Framework) StartAPIServer(ns string, args ...string) (*APIServer, error) {
	logPath := filepath.Join(f.Dir, "api-server-"+ns+".log")
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	flags := append([]string{"server", "--kubeconfig", f.Kubeconfig, "--listen", "127.0.0.1:0", "--auth", "kubernetes",
		"--namespace", ns}, args...)
	fmt.Fprintf(log, "===== stepflow %s (%s)\n", strings.Join(flags, " "), time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(f.Binary, flags...)
	cmd.Dir = f.Dir
	cmd.Stdout = log
	stderr, err := cmd.StderrPipe()
	if err != nil {
		log.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("starting stepflow server: %w", err)
	}
	s := &APIServer{LogPath: logPath, cmd: cmd, done: make(chan struct{})}
	addr := make(chan string, 1)
	copied := make(chan struct{})
	go func() { // copies its stderr to the log, watching for the address
		defer close(copied)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(log, line)
			if m := servingLine.FindStringSubmatch(line); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
	}()
	go func() {
		<-copied
		s.err = cmd.Wait()
		log.Close()
		close(s.done)
	}()

	deadline := time.After(apiServerStart)
	select {
	case s.URL = <-addr:
	case <-s.done:
		return nil, fmt.Errorf("stepflow server exited before serving (%v); its log:\n%s", s.err, s.LogTail(30))
	case <-deadline:
		_ = s.Stop(time.Second)
		return nil, fmt.Errorf("stepflow server printed no address within %s; its log:\n%s", apiServerStart, s.LogTail(30))
	}
	for {
		resp, err := http.Get(s.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("stepflow server exited before it was ready (%v); its log:\n%s", s.err, s.LogTail(30))
		case <-deadline:
			_ = s.Stop(time.Second)
			return nil, fmt.Errorf("stepflow server at %s was not ready within %s (last: %v); its log:\n%s", s.URL, apiServerStart, err, s.LogTail(30))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop asks the server to stop (SIGTERM) and kills it after grace.
func (s *APIServer) Stop(grace time.Duration) error {
	if s == nil {
		return nil
	}
	select {
	case <-s.done:
		return nil
	default:
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-s.done:
		return nil
	case <-time.After(grace):
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	return fmt.Errorf("stepflow server did not stop within %s of SIGTERM and was killed", grace)
}

// LogTail returns the last n lines the server wrote.
func (s *APIServer) LogTail(n int) string {
	out, err := os.ReadFile(s.LogPath)
	if err != nil {
		return fmt.Sprintf("(no server log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Reply is one answer of the API: its HTTP status and its envelope, data
// left raw for the spec to decode.
type Reply struct {
	Method, Path string          `json:"-"`
	Status       int             `json:"-"`
	Code         int             `json:"code"`
	Success      bool            `json:"success"`
	Message      string          `json:"message"`
	RequestID    string          `json:"requestId"`
	Timestamp    int64           `json:"timestamp"`
	Data         json.RawMessage `json:"data"`
}

// OK is nil when the call succeeded (HTTP 200, code 200, success) and
// otherwise says what came back.
func (r Reply) OK() error {
	if r.Status == http.StatusOK && r.Code == http.StatusOK && r.Success {
		return nil
	}
	return fmt.Errorf("%s %s: HTTP %d, code %d, success %v: %s", r.Method, r.Path, r.Status, r.Code, r.Success, r.Message)
}

// Decode decodes the envelope's data into v.
func (r Reply) Decode(v any) error {
	if err := json.Unmarshal(r.Data, v); err != nil {
		return fmt.Errorf("%s %s: data %s: %w", r.Method, r.Path, r.Data, err)
	}
	return nil
}

// Do sends method path (with its query) to the server with the bearer
// token tok and body (YAML for a launch, JSON otherwise), and returns the
// envelope. An answer that is not an envelope is an error.
func (s *APIServer) Do(method, path, tok, body string) (Reply, error) {
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path, strings.NewReader(body))
	if err != nil {
		return Reply{}, err
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	switch {
	case body == "":
	case strings.HasPrefix(strings.TrimSpace(body), "{"):
		req.Header.Set("Content-Type", "application/json")
	default:
		req.Header.Set("Content-Type", "application/yaml")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Reply{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return Reply{}, fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	r := Reply{Method: method, Path: path, Status: resp.StatusCode}
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&r); err != nil {
		return Reply{}, fmt.Errorf("%s %s: HTTP %d, not an envelope (%v): %s", method, path, resp.StatusCode, err, b)
	}
	return r, nil
}

// APIUser creates ServiceAccount ns/name, lets it use the verbs on
// workflowruns in namespace ns (a Role and a RoleBinding), and returns a
// bearer token of it from the TokenRequest API: a user of `stepflow
// server --auth kubernetes`.
func (f *Framework) APIUser(ctx context.Context, ns, name string, verbs ...string) (string, error) {
	objs := []client.Object{
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{"core.oam.dev"}, Resources: []string{"workflowruns"}, Verbs: verbs}}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: ns, Name: name}}},
	}
	for _, o := range objs {
		if err := f.Client.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			return "", fmt.Errorf("creating %T %s/%s: %w", o, ns, name, err)
		}
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", f.Kubeconfig)
	if err != nil {
		return "", err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", err
	}
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("a token of serviceaccount %s/%s: %w", ns, name, err)
	}
	return tr.Status.Token, nil
}
