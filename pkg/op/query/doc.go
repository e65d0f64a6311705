// Package query is the "query" op family, KubeVela's vela/query and
// vela/ql (the flat twin), over Stepflow's application model, and the
// "multicluster" family's cluster listing (vela/multicluster, and the
// flat op.#ListClusters).
//
// The model. KubeVela answers these ops from an Application's resource
// tracker. Stepflow has no tracker: an application (pkg/app) is a run
// launched from an ApplicationConfiguration, and every object its
// components render carries the labels stepflow.dev/app-id (the app id,
// app.LabelValue of it) and app.oam.dev/component (the component's name)
// (pkg/op/component). So an app's resources are the objects with its
// app-id label:
//
//   - app.name is the app id; app.namespace, or filter.clusterNamespace
//     when given, is the namespace listed (the run's namespace when both
//     are empty);
//   - filter.cluster names the cluster (pkg/clusters); without it the
//     local one. The result names it "local";
//   - filter.components keeps the objects of those components only;
//   - filter.kind with filter.apiVersion lists that kind; without it, the
//     kinds Stepflow's shipped component types render (DefaultKinds:
//     Deployments, StatefulSets, Services, ConfigMaps), which the chart's
//     default runner rights may list. A kind the cluster does not serve is
//     a permanent "no kind ... is its CRD installed?".
//
// Every request is made with the step's identity (kube.Clusters gives its
// client), so a step sees no more of an app than its ServiceAccount may
// list; a denial is permanent.
//
// The ops (all Idempotent: they only read):
//
//	op                       returns
//	listResourcesInApp       list: [{cluster, component, revision, object}]
//	collectResources         list: the same, for filter.kind: Pod lists the
//	                         Pods selected by the app's Deployments and
//	                         StatefulSets (spec.selector), any other kind
//	                         the app's objects of that kind
//	collectServiceEndpoints  list: [{endpoint, ref, cluster, component}]
//	                         for each port of the app's Services: the
//	                         in-cluster NAME.NAMESPACE:PORT (inner: true),
//	                         and for a LoadBalancer each ingress IP or
//	                         hostname (inner: false). Ingresses and node
//	                         ports are not collected.
//
// revision is always "": Stepflow keeps no application revisions. The ops
// that only KubeVela core can answer (listAppliedResources and
// getApplicationTree read its resource tracker and tree, searchEvents
// and collectLogsInPod are its dashboard's) fail the step with a
// permanent error that names the op and says why.
//
// Cluster listing: list-clusters returns outputs.clusters, the sorted
// names of the cluster Secrets of the system namespace, without "local",
// as KubeVela's. It needs a Clusters that can list (Lister, which
// *clusters.Registry is: it lists the Secrets' metadata as the step's
// identity, which must be allowed to list Secrets in the system
// namespace); with any other Clusters there are no named clusters and the
// list is empty.
package query
