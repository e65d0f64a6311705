package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/yaml"
)

// Output formats of -o.
const (
	outTable = ""
	outWide  = "wide"
	outYAML  = "yaml"
	outJSON  = "json"
	outName  = "name"
)

// checkOutput rejects an -o the command does not print.
func checkOutput(format string, allowed ...string) error {
	for _, a := range append([]string{outTable}, allowed...) {
		if format == a {
			return nil
		}
	}
	return fmt.Errorf("unknown output format %q: want %s", format, strings.Join(allowed, " or "))
}

// printData prints v as YAML or JSON.
func printData(w io.Writer, format string, v any) error {
	var b []byte
	var err error
	if format == outJSON {
		b, err = json.MarshalIndent(v, "", "  ")
		b = append(b, '\n')
	} else {
		b, err = yaml.Marshal(v)
	}
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// printServerObject prints, as -o yaml|json, an object as the server holds
// it (read untyped, so no field the server omits is printed as null).
func printServerObject(ctx context.Context, w io.Writer, c client.Client, format string, gvk schema.GroupVersionKind, key types.NamespacedName) error {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	if err := c.Get(ctx, key, u); err != nil {
		return apiError(err, described(strings.ToLower(gvk.Kind), key))
	}
	return printObject(w, c.Scheme(), format, u)
}

// printServerList prints, as -o yaml|json, the objects of kind gvk that
// opts select, as the server holds them.
func printServerList(ctx context.Context, w io.Writer, c client.Client, format string, gvk schema.GroupVersionKind, opts ...client.ListOption) error {
	l, err := listServer(ctx, c, gvk, opts...)
	if err != nil {
		return err
	}
	return printObject(w, c.Scheme(), format, l)
}

// listServer lists the objects of kind gvk that opts select, untyped, as
// the server holds them.
func listServer(ctx context.Context, c client.Client, gvk schema.GroupVersionKind, opts ...client.ListOption) (*unstructured.UnstructuredList, error) {
	l := &unstructured.UnstructuredList{}
	l.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
	if err := c.List(ctx, l, opts...); err != nil {
		return nil, apiError(err, "listing "+strings.ToLower(gvk.Kind)+"s")
	}
	return l, nil
}

// resourceName is kind's resource.group, as kubectl's -o name prints it
// before the object's name: workflowrun.core.oam.dev.
func resourceName(gvk schema.GroupVersionKind) string {
	return strings.ToLower(gvk.Kind) + "." + gvk.Group
}

// span is the time from start to end, or to now while end is unset; "" if
// start is unset.
func span(start, end metav1.Time, now time.Time) string {
	if start.IsZero() {
		return ""
	}
	to := now
	if !end.IsZero() {
		to = end.Time
	}
	return duration.HumanDuration(to.Sub(start.Time))
}

// printObject prints an object or a list as kubectl get -o yaml|json does:
// with apiVersion and kind, without managedFields.
func printObject(w io.Writer, s *runtime.Scheme, format string, obj runtime.Object) error {
	objs := []runtime.Object{obj}
	if meta.IsListType(obj) {
		// The items of a typed list point into it.
		items, err := meta.ExtractList(obj)
		if err != nil {
			return err
		}
		objs = append(objs, items...)
	}
	for _, o := range objs {
		gvk, err := apiutil.GVKForObject(o, s)
		if err != nil {
			return err
		}
		o.GetObjectKind().SetGroupVersionKind(gvk)
		if m, err := meta.Accessor(o); err == nil {
			m.SetManagedFields(nil)
		}
	}
	return printData(w, format, obj)
}

// newTable writes aligned columns as kubectl does; Flush it when done.
func newTable(w io.Writer, header ...string) *tabwriter.Writer {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	return tw
}

// row writes one table row.
func row(tw *tabwriter.Writer, cells ...string) {
	for i, c := range cells {
		if c == "" {
			cells[i] = "-"
		}
		// A tab or newline in a message would break the columns.
		cells[i] = strings.NewReplacer("\t", " ", "\n", " ").Replace(cells[i])
	}
	fmt.Fprintln(tw, strings.Join(cells, "\t"))
}

// age is how long ago t was, as kubectl prints it.
func age(t metav1.Time, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return duration.HumanDuration(now.Sub(t.Time))
}

// truncate shortens s to n runes for a table column.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-3]) + "..."
}
