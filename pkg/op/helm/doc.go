// Package helm is the "helm" op family: one op, render, that renders a Helm
// chart into the Kubernetes objects it produces, as `helm template` does,
// with Helm's Go SDK (helm.sh/helm/v3: chart loader, chartutil values,
// engine). Its CUE schema is stdlib/vela/helm (#Render, $params →
// $returns) and, in the flat dialect, #HelmRender in stdlib/vela/op; both
// decode into Params. The HELM component type (definitions/components/
// helm.cue) is built on it; applying the objects is the kube ops' work.
//
// The model:
//
//   - A call is (chart source, release, namespace, values) → objects. The
//     chart source is one of: a chart name in a chart repository (repo, the
//     URL that serves index.yaml; version a version or a semver range,
//     newest stable when unset), an oci:// reference (version is the tag
//     when the reference has none; newest semver tag when neither has
//     one), or the http(s) URL of a chart .tgz.
//   - Rendering is an install with no cluster behind it: release revision
//     1, IsInstall, Helm's default capabilities, no lookup, no hooks run,
//     values checked against the chart's values.schema.json. The class is
//     op.Idempotent: a step evaluated again renders again.
//   - What it returns: every object of every rendered manifest (the chart's
//     crds/ included, as an install applies them), decoded from YAML;
//     NOTES.txt, test hooks (helm.sh/hook: test...) and empty documents are
//     dropped; other hooks stay, as `helm template` prints them. Objects
//     without a namespace get the call's, unless their kind is cluster
//     scoped: a built-in cluster-scoped kind, or one that a
//     CustomResourceDefinition of the same chart declares with scope
//     Cluster. The order is stable: Helm's install order by kind (kinds it
//     does not know after, by kind), then name.
//   - Network. Every download (index.yaml, .tgz, OCI manifest, tag list,
//     blob, registry token) goes through one HTTP client whose transport
//     dials through the fence (pkg/netfence, Options.Fence) and whose
//     redirects are checked by it: a denied destination fails the call
//     permanently, naming the URL and the rule. Downloads are bounded
//     (Options.MaxChartBytes, MaxIndexBytes); OCI registries are reached
//     anonymously (a bearer token a registry hands to anyone is fetched;
//     no credentials are read from anywhere, and a chart or repo URL that
//     carries some is refused, since it would show in the step's status).
//   - Caching. Chart archives are kept in memory, least recently used out,
//     bounded in bytes (Options.CacheBytes), keyed by where they come from:
//     the archive URL with the digest the repository index gives, the OCI
//     repository and digest, or the .tgz URL. A repository's index.yaml
//     is kept for Options.IndexTTL, so a step evaluated again with the
//     same parameters downloads nothing, and concurrent calls for one
//     chart share one download. An OCI reference's manifest (and, without
//     a version, its tag list) is asked on each call: a tag may move. The
//     archive is loaded anew for each render (rendering may alter a loaded
//     chart's dependencies).
//   - Rendering runs in the controller's process, as Go templates with no
//     deadline of their own: a chart is trusted as far as the repository
//     it comes from (the fence decides which repositories are reachable).
//   - Errors say how they are handled. A chart or version that does not
//     exist, a 4xx answer, an archive that does not load, a template or
//     values-schema failure, a download over the bound and a fenced
//     destination are op.Permanent and name the chart, the version and
//     Helm's message. No answer, a 5xx or 429 answer, and a cancelled call
//     are plain errors naming the URL: a retry may pass.
package helm
