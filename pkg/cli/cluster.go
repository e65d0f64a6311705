package cli

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/pkg/clusters"
	"github.com/stepflow-dev/stepflow/pkg/definition"
	"github.com/stepflow-dev/stepflow/pkg/op/kube"
)

// newClusterCmd is `stepflow cluster join|list|remove`: the named clusters
// kube ops reach with `cluster: NAME`, kept as KubeVela cluster Secrets in
// the system namespace (pkg/clusters).
func newClusterCmd(deps Deps, g *globals) *cobra.Command {
	var systemNS string
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Manage the named clusters steps reach with cluster: NAME",
	}
	cmd.PersistentFlags().StringVar(&systemNS, "system-namespace", definition.DefaultSystemNamespace, "namespace of the cluster Secrets")
	cmd.AddCommand(newClusterJoinCmd(deps, g, &systemNS), newClusterListCmd(deps, g, &systemNS), newClusterRemoveCmd(deps, g, &systemNS))
	return cmd
}

func newClusterJoinCmd(deps Deps, g *globals, systemNS *string) *cobra.Command {
	var kubeconfig, kubeContext, hub string
	cmd := &cobra.Command{
		Use:   "join NAME --kubeconfig FILE [--join-context CTX]",
		Short: "Store a cluster's endpoint and credentials from a kubeconfig as cluster NAME",
		Long: `join reads the endpoint, CA and credentials (a bearer token or a client
certificate) of a kubeconfig context and stores them as the cluster Secret
NAME in the system namespace. Here --kubeconfig is the joined cluster's, and
--join-context picks its context; the cluster that runs Stepflow is reached
through --hub-kubeconfig, else $KUBECONFIG or ~/.kube/config, in the context
the global --context picks.

Unless the controller runs single-tenant, steps act on the joined cluster
by impersonating their ServiceAccount's user name, so these credentials
need the right to impersonate there.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := checkClusterName(name); err != nil {
				return err
			}
			if kubeconfig == "" {
				return fmt.Errorf("cluster join %s: --kubeconfig FILE of the cluster to join is required", name)
			}
			creds, err := credentialsFrom(kubeconfig, kubeContext)
			if err != nil {
				return fmt.Errorf("cluster join %s: %w", name, err)
			}
			s, err := clusters.Secret(*systemNS, name, creds)
			if err != nil {
				return err
			}
			if hub != "" {
				g.kubeconfig = hub
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.Create(cmd.Context(), s); err != nil {
				if apierrors.IsAlreadyExists(err) {
					return fmt.Errorf("cluster %s is already joined (secret %s/%s): remove it first", name, *systemNS, name)
				}
				return apiError(err, "secret "+*systemNS+"/"+name)
			}
			fmt.Fprintf(deps.Stdout, "cluster %s joined: %s\n", name, creds.Endpoint)
			return nil
		},
	}
	f := cmd.Flags()
	// This --kubeconfig shadows the global one: it names the joined cluster.
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig of the cluster to join")
	f.StringVar(&kubeContext, "join-context", "", "context of the joined cluster's kubeconfig (default: its current context)")
	f.StringVar(&hub, "hub-kubeconfig", "", "kubeconfig of the cluster that runs Stepflow (default: $KUBECONFIG or ~/.kube/config)")
	return cmd
}

// checkClusterName rejects names a cluster Secret cannot have, and the
// names of the local cluster.
func checkClusterName(name string) error {
	if name == kube.LocalCluster {
		return fmt.Errorf("cluster %q is the local cluster's name", name)
	}
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return fmt.Errorf("cluster name %q: %s", name, strings.Join(errs, "; "))
	}
	return nil
}

// credentialsFrom reads the endpoint and credentials of a kubeconfig
// context, loading the files it names. Its errors never hold the
// credentials.
func credentialsFrom(path, kubeContext string) (clusters.Credentials, error) {
	raw, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return clusters.Credentials{}, fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	ctxName := kubeContext
	if ctxName == "" {
		ctxName = raw.CurrentContext
	}
	if _, ok := raw.Contexts[ctxName]; !ok {
		if ctxName == "" {
			return clusters.Credentials{}, fmt.Errorf("kubeconfig %s has no current context: pass --join-context", path)
		}
		return clusters.Credentials{}, fmt.Errorf("kubeconfig %s: context %q does not exist", path, ctxName)
	}
	cfg, err := clientcmd.NewNonInteractiveClientConfig(*raw, ctxName, &clientcmd.ConfigOverrides{}, nil).ClientConfig()
	if err != nil {
		return clusters.Credentials{}, fmt.Errorf("kubeconfig %s, context %s: %w", path, ctxName, err)
	}
	if err := rest.LoadTLSFiles(cfg); err != nil {
		return clusters.Credentials{}, fmt.Errorf("kubeconfig %s, context %s: %w", path, ctxName, err)
	}
	creds := clusters.Credentials{Endpoint: cfg.Host, CA: cfg.CAData}
	token := strings.TrimSpace(cfg.BearerToken)
	if token == "" && cfg.BearerTokenFile != "" {
		b, err := os.ReadFile(cfg.BearerTokenFile)
		if err != nil {
			return clusters.Credentials{}, fmt.Errorf("kubeconfig %s, context %s: token file: %w", path, ctxName, err)
		}
		token = strings.TrimSpace(string(b))
	}
	switch {
	case token != "":
		creds.Type, creds.Token = clusters.ServiceAccountToken, token
	case len(cfg.CertData) > 0 && len(cfg.KeyData) > 0:
		creds.Type, creds.Cert, creds.Key = clusters.X509Certificate, cfg.CertData, cfg.KeyData
	default:
		return clusters.Credentials{}, fmt.Errorf("kubeconfig %s, context %s: authenticates with neither a bearer token nor a client certificate (exec plugins, auth providers and passwords cannot be stored in a cluster Secret)", path, ctxName)
	}
	return creds, nil
}

func newClusterListCmd(deps Deps, g *globals, systemNS *string) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the joined clusters",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			var list corev1.SecretList
			if err := c.List(cmd.Context(), &list, client.InNamespace(*systemNS), client.HasLabels{clusters.CredentialTypeLabel}); err != nil {
				return apiError(err, "cluster secrets in namespace "+*systemNS)
			}
			w := tabwriter.NewWriter(deps.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tTYPE\tENDPOINT")
			for i := range list.Items {
				s := &list.Items[i]
				// Only the label and the endpoint are printed: never a credential.
				fmt.Fprintf(w, "%s\t%s\t%s\n", s.Name, s.Labels[clusters.CredentialTypeLabel], strings.TrimSpace(string(s.Data[clusters.KeyEndpoint])))
			}
			return w.Flush()
		},
	}
}

func newClusterRemoveCmd(deps Deps, g *globals, systemNS *string) *cobra.Command {
	return &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a joined cluster (its Secret)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			c, err := g.client()
			if err != nil {
				return err
			}
			what := "cluster " + name + " (secret " + *systemNS + "/" + name + ")"
			var s corev1.Secret
			if err := c.Get(cmd.Context(), client.ObjectKey{Namespace: *systemNS, Name: name}, &s); err != nil {
				return apiError(err, what)
			}
			if _, ok := s.Labels[clusters.CredentialTypeLabel]; !ok {
				return fmt.Errorf("%s: not a cluster Secret (no label %s), left alone", what, clusters.CredentialTypeLabel)
			}
			// Delete exactly the Secret just checked.
			if err := c.Delete(cmd.Context(), &s, client.Preconditions{UID: &s.UID}); err != nil {
				return apiError(err, what)
			}
			fmt.Fprintf(deps.Stdout, "cluster %s removed\n", name)
			return nil
		},
	}
}
