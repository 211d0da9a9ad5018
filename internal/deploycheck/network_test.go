package deploycheck

import (
	"fmt"
	"maps"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Transport and access: ClickHouse over TLS, NetworkPolicies both ways and
// narrow, RBAC exactly what the collectors read. Each check returns
// problems; TestOverlays runs them on the renderings, network_unit_test.go on
// the files and on what they must refuse.

// envRef matches ${env:NAME} without a default (NAME must be set) and
// ${env:NAME:-default}.
var envRef = regexp.MustCompile(`\$\{env:([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}`)

// resolveEnv replaces each ${env:NAME[:-default]} of s by env[NAME], else
// its default; ok is false when a variable has neither.
func resolveEnv(s string, env map[string]string) (string, bool) {
	ok := true
	out := envRef.ReplaceAllStringFunc(s, func(m string) string {
		sub := envRef.FindStringSubmatch(m)
		if v, set := env[sub[1]]; set {
			return v
		}
		if sub[2] == "" {
			ok = false
		}
		return strings.TrimPrefix(sub[2], ":-")
	})
	return out, ok
}

// clickhousePlainPorts are ClickHouse's default plaintext ports (native,
// HTTP); their TLS twins are 9440 and 8443.
var clickhousePlainPorts = map[string]bool{"9000": true, "8123": true}

// clickhouseTLSProblems: every clickhouse exporter of a collector config,
// and every gpu_storage extension's clickhouse backend (the site's reader),
// dials TLS and verifies the server. With the contrib exporter v0.165.1 TLS
// is on when the endpoint's scheme is https, or its DSN has secure=true, or
// the tls block sets a file or server name (the exporter then loads it and
// the driver dials TLS whatever the scheme); tls.insecure turns it off again,
// insecure_skip_verify and the DSN's skip_verify stop verifying. The
// gpu_storage backend (internal/gpustore/clickhouse) parses the same DSN and
// replaces its TLS by the tls block's when there is one, so the same rules
// hold. The endpoint, resolved with env, must not name a plaintext port.
func clickhouseTLSProblems(cfg map[string]any, env map[string]string) []string {
	var problems []string
	targets := map[string]any{} // what, for messages -> its settings
	exporters, _ := get(cfg, "exporters").(map[string]any)
	for id, c := range exporters {
		if componentType(id) == "clickhouse" {
			targets["exporter "+id] = c
		}
	}
	extensions, _ := get(cfg, "extensions").(map[string]any)
	for id, c := range extensions {
		if ch := get(c, "clickhouse"); componentType(id) == "gpu_storage" && ch != nil {
			targets["extension "+id+" clickhouse"] = ch
		}
	}
	for _, what := range slices.Sorted(maps.Keys(targets)) {
		c := targets[what]
		add := func(format string, args ...any) {
			problems = append(problems, what+": "+fmt.Sprintf(format, args...))
		}
		tls, _ := get(c, "tls").(map[string]any)
		if get(tls, "insecure") == true {
			add("tls.insecure turns TLS off")
		}
		if get(tls, "insecure_skip_verify") == true {
			add("tls.insecure_skip_verify: the server's certificate is not verified")
		}
		tlsConfigured := false
		for _, k := range []string{"ca_file", "ca_pem", "cert_file", "key_file", "server_name_override"} {
			if str(tls[k]) != "" {
				tlsConfigured = true
			}
		}
		endpoint, resolved := resolveEnv(str(get(c, "endpoint")), env)
		secure := false
		if resolved {
			u, err := url.Parse(endpoint)
			if err != nil {
				add("endpoint %q: %v", endpoint, err)
				continue
			}
			q := u.Query()
			secure = u.Scheme == "https" || q.Has("secure") && q.Get("secure") != "false" && q.Get("secure") != "0"
			if v := q.Get("skip_verify"); q.Has("skip_verify") && v != "false" && v != "0" {
				add("endpoint %q: skip_verify: the server's certificate is not verified", endpoint)
			}
			for _, h := range strings.Split(u.Host, ",") {
				if _, port, err := net.SplitHostPort(h); err == nil && clickhousePlainPorts[port] {
					add("endpoint %q: port %s is ClickHouse's plaintext port (TLS: 9440 native, 8443 HTTP)", endpoint, port)
				}
			}
		}
		if !secure && !tlsConfigured {
			add("not over TLS: the endpoint %q is neither https nor secure=true, and tls names no CA", endpoint)
		}
	}
	return problems
}

// allNamespaces reports whether a NetworkPolicy peer selects every
// namespace (an empty namespaceSelector).
func allNamespaces(peer any) bool {
	sel, ok := get(peer, "namespaceSelector").(map[string]any)
	labels, _ := get(sel, "matchLabels").(map[string]any)
	return ok && len(labels) == 0 && len(list(get(sel, "matchExpressions"))) == 0
}

// networkPolicyProblems: a policy restricts both ways (Ingress and Egress in
// policyTypes); every ingress rule names its sources, none of them every
// namespace or every address; every egress rule names its ports, and DNS is
// let out (a policy with Egress and no DNS breaks every name lookup).
func networkPolicyProblems(np map[string]any) []string {
	var problems []string
	name := str(get(np, "metadata", "namespace")) + "/" + str(get(np, "metadata", "name"))
	add := func(format string, args ...any) {
		problems = append(problems, "NetworkPolicy "+name+": "+fmt.Sprintf(format, args...))
	}
	types := strs(get(np, "spec", "policyTypes"))
	for _, want := range []string{"Ingress", "Egress"} {
		if !slices.Contains(types, want) {
			add("policyTypes lacks %s: that direction is open", want)
		}
	}
	for i, r := range list(get(np, "spec", "ingress")) {
		from := list(get(r, "from"))
		if len(from) == 0 {
			add("ingress rule %d admits every source", i)
		}
		for _, peer := range from {
			if allNamespaces(peer) {
				add("ingress rule %d admits every namespace (namespaceSelector: {})", i)
			}
			if c := str(get(peer, "ipBlock", "cidr")); c == "0.0.0.0/0" || c == "::/0" {
				add("ingress rule %d admits every address (%s)", i, c)
			}
		}
	}
	if slices.Contains(types, "Egress") && !egressPorts(np)["UDP/53"] && !egressPorts(np)["UDP/5353"] {
		add("egress lets no DNS out (UDP 53 or OpenShift's 5353)")
	}
	for i, r := range list(get(np, "spec", "egress")) {
		if len(list(get(r, "ports"))) == 0 {
			add("egress rule %d names no ports: every port is open to its destinations", i)
		}
	}
	return problems
}

// egressPorts are the "PROTOCOL/port" an egress rule of the policy lets out.
func egressPorts(np map[string]any) map[string]bool {
	out := map[string]bool{}
	for _, r := range list(get(np, "spec", "egress")) {
		for _, p := range list(get(r, "ports")) {
			proto := str(get(p, "protocol"))
			if proto == "" {
				proto = "TCP"
			}
			n, ok := get(p, "port").(int)
			if !ok {
				continue
			}
			last := n
			if e, ok := get(p, "endPort").(int); ok {
				last = e
			}
			for ; n <= last; n++ {
				out[proto+"/"+strconv.Itoa(n)] = true
			}
		}
	}
	return out
}

// dialPorts are the TCP ports a collector config connects to, by what: each
// exporter's endpoint, each extension's server_url, each gpu_storage's
// clickhouse endpoint and each pull receiver's endpoint, resolved with env (unresolvable ones are left out: validation
// reports those).
func dialPorts(cfg map[string]any, env map[string]string) map[string]string {
	out := map[string]string{}
	addr := func(what string, v any) {
		s, ok := resolveEnv(str(v), env)
		if !ok || s == "" {
			return
		}
		hosts := s
		defaultPort := ""
		if strings.Contains(s, "://") {
			u, err := url.Parse(s)
			if err != nil {
				return
			}
			hosts = u.Host
			defaultPort = map[string]string{"https": "443", "http": "80"}[u.Scheme]
		}
		for _, h := range strings.Split(hosts, ",") {
			if _, port, err := net.SplitHostPort(h); err == nil {
				out[what] = port
			} else if defaultPort != "" {
				out[what] = defaultPort
			}
		}
	}
	for kind, key := range map[string]string{"exporters": "endpoint", "extensions": "server_url"} {
		m, _ := get(cfg, kind).(map[string]any)
		for id, c := range m {
			addr(kind+" "+id, get(c, key))
		}
	}
	// The site's ClickHouse reader.
	extensions, _ := get(cfg, "extensions").(map[string]any)
	for id, c := range extensions {
		if componentType(id) == "gpu_storage" {
			addr("extensions "+id+" clickhouse", get(c, "clickhouse", "endpoint"))
		}
	}
	receivers, _ := get(cfg, "receivers").(map[string]any)
	for id, c := range receivers {
		if componentType(id) == "promql" {
			addr("receivers "+id, get(c, "endpoint"))
		}
	}
	return out
}

// access is what a ServiceAccount reads: a resource of an API group, in a
// namespace or ("") in every namespace.
type access struct{ group, resource, namespace string }

func (a access) String() string {
	where := "every namespace"
	if a.namespace != "" {
		where = "namespace " + a.namespace
	}
	g := a.group
	if g == "" {
		g = "core"
	}
	return fmt.Sprintf("%s/%s in %s", g, a.resource, where)
}

// readVerbs are the verbs of reading; a collector never writes.
var readVerbs = map[string]bool{"get": true, "list": true, "watch": true}

// rbacGrants reads the rendered Roles, ClusterRoles and their bindings: what
// each ServiceAccount ("namespace/name") may read, and the problems found on
// the way (wildcards, write verbs). Non-resource URLs are left out.
func rbacGrants(objs []map[string]any) (map[string]map[access]bool, []string) {
	roles := map[string][]any{} // "Kind namespace/name"
	for _, o := range objs {
		if k := str(o["kind"]); k == "Role" || k == "ClusterRole" {
			roles[k+" "+str(get(o, "metadata", "namespace"))+"/"+str(get(o, "metadata", "name"))] = list(o["rules"])
		}
	}
	grants := map[string]map[access]bool{}
	var problems []string
	for _, o := range objs {
		kind := str(o["kind"])
		if kind != "RoleBinding" && kind != "ClusterRoleBinding" {
			continue
		}
		scope := ""
		if kind == "RoleBinding" {
			scope = str(get(o, "metadata", "namespace"))
		}
		refKind := str(get(o, "roleRef", "kind"))
		roleNS := scope
		if refKind == "ClusterRole" {
			roleNS = ""
		}
		rules := roles[refKind+" "+roleNS+"/"+str(get(o, "roleRef", "name"))]
		for _, s := range list(o["subjects"]) {
			if str(get(s, "kind")) != "ServiceAccount" {
				continue
			}
			sa := str(get(s, "namespace")) + "/" + str(get(s, "name"))
			for _, r := range rules {
				if len(list(get(r, "resources"))) == 0 {
					continue // nonResourceURLs
				}
				for _, v := range strs(get(r, "verbs")) {
					if !readVerbs[v] {
						problems = append(problems, fmt.Sprintf("ServiceAccount %s may %s (%s %s)", sa, v, kind, str(get(o, "metadata", "name"))))
					}
				}
				for _, g := range strs(get(r, "apiGroups")) {
					for _, res := range strs(get(r, "resources")) {
						if g == "*" || res == "*" {
							problems = append(problems, fmt.Sprintf("ServiceAccount %s: wildcard rule %s/%s", sa, g, res))
						}
						if grants[sa] == nil {
							grants[sa] = map[access]bool{}
						}
						grants[sa][access{g, res, scope}] = true
					}
				}
			}
		}
	}
	return grants, problems
}

// sdResources are what Prometheus' Kubernetes service discovery reads per
// role (informers on these kinds).
var sdResources = map[string][]access{
	"pod":           {{"", "pods", ""}},
	"endpoints":     {{"", "endpoints", ""}, {"", "services", ""}, {"", "pods", ""}},
	"endpointslice": {{"discovery.k8s.io", "endpointslices", ""}, {"", "services", ""}, {"", "pods", ""}},
	"service":       {{"", "services", ""}},
	"node":          {{"", "nodes", ""}},
	"ingress":       {{"networking.k8s.io", "ingresses", ""}},
}

// rbacNeeds is what the ServiceAccounts of a collector (the operator's
// NAME-collector and NAME-targetallocator in namespace ns) read through the
// API, from its config:
//   - service discovery (kubernetes_sd_configs of the prometheus receivers):
//     its role's kinds in the namespaces it names, every namespace when it
//     names none; done by the target allocator when there is one, which also
//     reads the collectors' pods in its own namespace, else by the collector;
//   - the gpumodel processor's Kubernetes source (metadata.kubernetes.enabled):
//     namespaces and resourcequotas in every namespace, and pods in every
//     namespace unless metadata.kubernetes.pods is false (default true).
func rbacNeeds(cfg map[string]any, ns, name string, targetAllocator bool) map[string]map[access]bool {
	collector, ta := ns+"/"+name+"-collector", ns+"/"+name+"-targetallocator"
	// Every ServiceAccount of the collector is checked, those that read nothing too.
	needs := map[string]map[access]bool{collector: {}}
	if targetAllocator {
		needs[ta] = map[access]bool{}
	}
	need := func(sa string, a access) {
		if needs[sa] == nil {
			needs[sa] = map[access]bool{}
		}
		needs[sa][a] = true
	}
	sd := collector
	if targetAllocator {
		sd = ta
		need(ta, access{"", "pods", ns})
	}
	receivers, _ := get(cfg, "receivers").(map[string]any)
	for id, r := range receivers {
		if componentType(id) != "prometheus" {
			continue
		}
		for _, job := range list(get(r, "config", "scrape_configs")) {
			for _, k := range list(get(job, "kubernetes_sd_configs")) {
				names := strs(get(k, "namespaces", "names"))
				if len(names) == 0 {
					names = []string{""}
				}
				for _, a := range sdResources[str(get(k, "role"))] {
					for _, n := range names {
						a.namespace = n
						need(sd, a)
					}
				}
			}
		}
	}
	processors, _ := get(cfg, "processors").(map[string]any)
	for id, p := range processors {
		if componentType(id) != "gpumodel" || get(p, "metadata", "kubernetes", "enabled") != true {
			continue
		}
		need(collector, access{"", "namespaces", ""})
		need(collector, access{"", "resourcequotas", ""})
		if get(p, "metadata", "kubernetes", "pods") != false {
			need(collector, access{"", "pods", ""})
		}
	}
	return needs
}

// rbacProblems: each ServiceAccount of needs is granted exactly what it
// reads: nothing it does not read (other kinds, Secrets, ConfigMaps, or
// every namespace where it reads a few), and everything it reads (else its
// informers fail at start).
func rbacProblems(grants, needs map[string]map[access]bool) []string {
	var problems []string
	for _, sa := range slices.Sorted(maps.Keys(needs)) {
		need, grant := needs[sa], grants[sa]
		for _, a := range slices.SortedFunc(maps.Keys(grant), cmpAccess) {
			if !need[a] && !need[access{a.group, a.resource, ""}] {
				problems = append(problems, fmt.Sprintf("ServiceAccount %s may read %s, which it does not read", sa, a))
			}
		}
		for _, a := range slices.SortedFunc(maps.Keys(need), cmpAccess) {
			if !grant[a] && !grant[access{a.group, a.resource, ""}] {
				problems = append(problems, fmt.Sprintf("ServiceAccount %s reads %s without a grant", sa, a))
			}
		}
	}
	return problems
}

func cmpAccess(a, b access) int { return strings.Compare(a.String(), b.String()) }
