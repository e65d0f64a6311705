package query

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/stepflow-dev/stepflow/pkg/op"
)

type endpointsOp struct{ f *Family }

func (*endpointsOp) NewParams() any     { return &listParams{} }
func (*endpointsOp) Class(any) op.Class { return op.Idempotent }

var serviceGVK = schema.GroupVersionKind{Version: "v1", Kind: "Service"}

func (o *endpointsOp) Run(ctx context.Context, call *op.Call) (op.Result, error) {
	if err := ctx.Err(); err != nil {
		return op.Result{}, err
	}
	p, err := op.ParamsOf[listParams](call)
	if err != nil {
		return op.Result{}, err
	}
	const name = "query.collectServiceEndpoints"
	t, err := o.f.resolve(ctx, name, call.Step, p.App)
	if err != nil {
		return op.Result{}, err
	}
	svcs, err := t.list(ctx, serviceGVK)
	if err != nil {
		return op.Result{}, err
	}
	out := []any{}
	for _, it := range svcs {
		var svc corev1.Service
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(it.obj.Object, &svc); err != nil {
			return op.Result{}, op.Permanentf("%s: Service %s/%s: %w", name, it.obj.GetNamespace(), it.obj.GetName(), err)
		}
		ref := map[string]any{"apiVersion": "v1", "kind": "Service", "name": svc.Name, "namespace": svc.Namespace}
		for _, e := range serviceEndpoints(&svc) {
			out = append(out, map[string]any{"endpoint": e, "ref": ref, "cluster": it.cluster, "component": it.component})
		}
	}
	return op.Result{Returns: map[string]any{"list": out}}, nil
}

// serviceEndpoints are the endpoints of svc, port by port: the in-cluster
// NAME.NAMESPACE (none for a headless Service or an ExternalName), then
// each LoadBalancer ingress address.
func serviceEndpoints(svc *corev1.Service) []map[string]any {
	var out []map[string]any
	inner := svc.Spec.Type != corev1.ServiceTypeExternalName && svc.Spec.ClusterIP != corev1.ClusterIPNone
	for _, port := range svc.Spec.Ports {
		base := func(host string, in bool) map[string]any {
			e := map[string]any{"protocol": string(orTCP(port.Protocol)), "host": host, "port": int64(port.Port), "inner": in}
			if port.Name != "" {
				e["portName"] = port.Name
			}
			if port.AppProtocol != nil {
				e["appProtocol"] = *port.AppProtocol
			}
			return e
		}
		if inner {
			out = append(out, base(fmt.Sprintf("%s.%s", svc.Name, svc.Namespace), true))
		}
		if svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
			for _, ing := range svc.Status.LoadBalancer.Ingress {
				host := ing.IP
				if ing.Hostname != "" {
					host = ing.Hostname
				}
				if host != "" {
					out = append(out, base(host, false))
				}
			}
		}
	}
	return out
}

func orTCP(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}
