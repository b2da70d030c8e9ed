package packaging

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/strait-dev/strait/internal/auth"
	"github.com/strait-dev/strait/internal/config"
	"github.com/strait-dev/strait/internal/secret"
)

const chartPath = "deploy/helm/strait"

// helmBin finds helm: $STRAIT_HELM, then PATH, then where go install puts
// it. The test skips without one (docs/ci-additions-packaging.sh installs
// it), or fails if STRAIT_REQUIRE_HELM is set, as CI sets it.
func helmBin(t *testing.T) string {
	t.Helper()
	// helm reads the chart, not the test: its files must count for the
	// test's cached result.
	dependOn(t, chartPath, func(string) bool { return true })
	if p := os.Getenv("STRAIT_HELM"); p != "" {
		return p
	}
	if p, err := exec.LookPath("helm"); err == nil {
		return p
	}
	if b, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, dir := range filepath.SplitList(strings.TrimSpace(string(b))) {
			p := filepath.Join(dir, "bin", "helm")
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	const msg = "helm is not installed: go install helm.sh/helm/v4/cmd/helm@v4.3.2 (see docs/ci-additions-packaging.sh); the chart is not rendered"
	if os.Getenv("STRAIT_REQUIRE_HELM") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// manifest is one rendered Kubernetes object.
type manifest map[string]any

func (m manifest) kind() string { s, _ := m["kind"].(string); return s }

// get walks m by keys (strings) and indexes (ints); nil when absent.
func (m manifest) get(path ...any) any {
	var cur any = map[string]any(m)
	for _, p := range path {
		switch k := p.(type) {
		case string:
			mm, ok := cur.(map[string]any)
			if !ok {
				return nil
			}
			cur = mm[k]
		case int:
			s, ok := cur.([]any)
			if !ok || k >= len(s) {
				return nil
			}
			cur = s[k]
		}
	}
	return cur
}

// render runs helm template with values and returns the objects by kind.
func render(t *testing.T, helm string, values string, extra ...string) (map[string]manifest, error) {
	t.Helper()
	vf := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(vf, []byte(values), 0o600); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"template", "strait", filepath.Join(repoRoot(t), chartPath), "-f", vf}, extra...)
	var stderr bytes.Buffer
	cmd := exec.Command(helm, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, errors.New(stderr.String())
	}
	objs := map[string]manifest{}
	dec := yaml.NewDecoder(bytes.NewReader(out))
	for {
		// Into a plain map: yaml would make nested maps manifests too.
		var raw map[string]any
		err := dec.Decode(&raw)
		m := manifest(raw)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("helm template printed YAML that does not parse: %v\n%s", err, out)
		}
		if m == nil {
			continue
		}
		if _, dup := objs[m.kind()]; dup {
			t.Fatalf("two objects of kind %s", m.kind())
		}
		objs[m.kind()] = m
	}
	return objs, nil
}

// TestHelmChart renders the chart as a user would and checks what
// Kubernetes would run: several replicas, the probes on /livez and
// /readyz, a non-root read-only container without capabilities, the
// configuration from a ConfigMap that the daemon accepts, and the secrets
// from a Secret.
func TestHelmChart(t *testing.T) {
	helm := helmBin(t)
	hash, err := auth.HashSecret("s3cret-for-the-chart-test")
	if err != nil {
		t.Fatal(err)
	}
	key, err := secret.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	values := `
config:
  destination_bootstrap: kafka-0.kafka:9092,kafka-1.kafka:9092
  destination_security_protocol: SASL_SSL
  destination_sasl_mechanism: SCRAM-SHA-512
  destination_sasl_username: strait
  auth:
    api_keys:
      - key: OPS7F2K
        secret_hash: "` + hash + `"
        principal: User:ops
    roles:
      - {principal: User:ops, role: admin}
secrets:
  secretsKey: "` + key + `"
  destinationSaslPassword: "p@ss word"
serviceMonitor:
  enabled: true
`
	lint := exec.Command(helm, "lint", "--strict", filepath.Join(repoRoot(t), chartPath), "--set", "config.destination_bootstrap=k:9092", "--set", "config.allow_unauthenticated=true")
	if out, err := lint.CombinedOutput(); err != nil {
		t.Fatalf("helm lint --strict: %v\n%s", err, out)
	}
	objs, err := render(t, helm, values)
	if err != nil {
		t.Fatalf("helm template: %v", err)
	}
	for _, k := range []string{"Deployment", "ConfigMap", "Secret", "Service", "ServiceAccount", "ServiceMonitor", "PodDisruptionBudget"} {
		if objs[k] == nil {
			t.Fatalf("no %s rendered; got %v", k, keys(objs))
		}
	}
	dep, cm, sec, svc := objs["Deployment"], objs["ConfigMap"], objs["Secret"], objs["Service"]
	if r, _ := dep.get("spec", "replicas").(int); r < 2 {
		t.Errorf("replicas %v, want at least 2: standbys take over", dep.get("spec", "replicas"))
	}
	if u := dep.get("spec", "strategy", "rollingUpdate", "maxUnavailable"); u != 0 {
		t.Errorf("maxUnavailable %v, want 0: a new instance joins before an old one leaves", u)
	}
	if u := objs["PodDisruptionBudget"].get("spec", "maxUnavailable"); u != 1 {
		t.Errorf("PodDisruptionBudget maxUnavailable %v, want 1", u)
	}
	pod := manifest(dep.get("spec", "template", "spec").(map[string]any))
	if n, _ := pod.get("containers").([]any); len(n) != 1 {
		t.Fatalf("%d containers, want 1", len(n))
	}
	c := manifest(pod.get("containers", 0).(map[string]any))
	for _, tc := range []struct {
		path []any
		want any
	}{
		{[]any{"livenessProbe", "httpGet", "path"}, "/livez"},
		{[]any{"livenessProbe", "httpGet", "port"}, "http"},
		{[]any{"readinessProbe", "httpGet", "path"}, "/readyz"},
		{[]any{"readinessProbe", "httpGet", "port"}, "http"},
		{[]any{"ports", 0, "name"}, "http"},
		{[]any{"ports", 0, "containerPort"}, 8090},
		{[]any{"securityContext", "runAsNonRoot"}, true},
		{[]any{"securityContext", "readOnlyRootFilesystem"}, true},
		{[]any{"securityContext", "allowPrivilegeEscalation"}, false},
		{[]any{"securityContext", "capabilities", "drop", 0}, "ALL"},
		{[]any{"args", 0}, "serve"},
		{[]any{"args", 1}, "--config"},
		{[]any{"args", 2}, "/etc/strait/config/strait.yaml"},
		{[]any{"volumeMounts", 0, "mountPath"}, "/etc/strait/config"},
		{[]any{"envFrom", 0, "secretRef", "name"}, sec.get("metadata", "name")},
	} {
		if got := c.get(tc.path...); got != tc.want {
			t.Errorf("container %v = %v, want %v", tc.path, got, tc.want)
		}
	}
	for _, tc := range []struct {
		path []any
		want any
	}{
		{[]any{"securityContext", "runAsNonRoot"}, true},
		{[]any{"securityContext", "runAsUser"}, 65532},
		{[]any{"automountServiceAccountToken"}, false},
		{[]any{"volumes", 0, "name"}, "config"},
		{[]any{"volumes", 0, "configMap", "name"}, cm.get("metadata", "name")},
	} {
		if got := pod.get(tc.path...); got != tc.want {
			t.Errorf("pod %v = %v, want %v", tc.path, got, tc.want)
		}
	}
	if got := svc.get("spec", "ports", 0, "targetPort"); got != "http" {
		t.Errorf("service targets %v, want the http port", got)
	}
	if got := objs["ServiceMonitor"].get("spec", "endpoints", 0, "path"); got != "/metrics" {
		t.Errorf("ServiceMonitor scrapes %v, want /metrics", got)
	}

	// The ConfigMap's strait.yaml plus the Secret's variables is a
	// configuration the daemon accepts, and holds no secret.
	file, _ := cm.get("data", "strait.yaml").(string)
	for _, s := range []string{key, "p@ss word"} {
		if strings.Contains(file, s) {
			t.Errorf("the ConfigMap holds a secret:\n%s", file)
		}
	}
	if b, err := yaml.Marshal(dep); err == nil {
		for _, s := range []string{key, "p@ss word"} {
			if strings.Contains(string(b), s) {
				t.Errorf("the Deployment holds a secret")
			}
		}
	}
	env := map[string]string{}
	for k, v := range sec.get("stringData").(map[string]any) {
		env[k], _ = v.(string)
	}
	if env["STRAIT_SECRETS_KEY"] != key || env["STRAIT_DESTINATION_SASL_PASSWORD"] != "p@ss word" {
		t.Errorf("the Secret holds %v", keysOf(env))
	}
	cfg := loadRendered(t, file, env)
	if err := cfg.Validate(); err != nil {
		t.Errorf("the daemon would refuse the rendered configuration: %v\n%s", err, file)
	}
	if cfg.HTTP != "0.0.0.0:8090" || len(cfg.Auth.APIKeys) != 1 || cfg.DestinationSASLPassword != "p@ss word" {
		t.Errorf("rendered configuration: http %q, %d API keys, SASL password set %v", cfg.HTTP, len(cfg.Auth.APIKeys), cfg.DestinationSASLPassword != "")
	}
}

// loadRendered loads file and env the way strait serve does.
func loadRendered(t *testing.T, file string, env map[string]string) config.Config {
	t.Helper()
	p := filepath.Join(t.TempDir(), "strait.yaml")
	if err := os.WriteFile(p, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Defaults()
	if err := cfg.LoadFile(p); err != nil {
		t.Fatalf("the daemon cannot load the ConfigMap's strait.yaml: %v\n%s", err, file)
	}
	for k := range env {
		if !isEnvVar(k) {
			t.Errorf("the Secret holds %s, which the daemon does not read", k)
		}
	}
	cfg.LoadEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	return cfg
}

func isEnvVar(k string) bool {
	for _, v := range config.Env {
		if v == k {
			return true
		}
	}
	return false
}

// TestHelmChartRefuses: the chart stops where the daemon would not start,
// and keeps secrets out of the ConfigMap.
func TestHelmChartRefuses(t *testing.T) {
	helm := helmBin(t)
	tests := []struct {
		name, values, wantErr string
	}{
		{"no destination", "config: {allow_unauthenticated: true}\n", "config.destination_bootstrap is required"},
		{"no auth", "config: {destination_bootstrap: 'k:9092'}\n", "configure config.auth"},
		{"a secret in the config", "config: {destination_bootstrap: 'k:9092', allow_unauthenticated: true, secrets_key: x}\n", "config.secrets_key is a secret"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := render(t, helm, tc.values)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err %v, want one mentioning %q", err, tc.wantErr)
			}
		})
	}
}

// TestHelmChartOptions: an existing Secret replaces the chart's, TLS turns
// the probes to HTTPS and sets the daemon's certificate files, and the
// ServiceMonitor is off by default.
func TestHelmChartOptions(t *testing.T) {
	helm := helmBin(t)
	objs, err := render(t, helm, `
config: {destination_bootstrap: 'k:9092', allow_unauthenticated: true}
existingSecret: my-strait-secrets
tls: {existingSecret: my-strait-tls}
`)
	if err != nil {
		t.Fatal(err)
	}
	if objs["Secret"] != nil || objs["ServiceMonitor"] != nil {
		t.Errorf("rendered %v: no Secret with existingSecret, no ServiceMonitor unless enabled", keys(objs))
	}
	c := manifest(objs["Deployment"].get("spec", "template", "spec", "containers", 0).(map[string]any))
	if got := c.get("envFrom", 0, "secretRef", "name"); got != "my-strait-secrets" {
		t.Errorf("envFrom %v, want the existing Secret", got)
	}
	for _, p := range []string{"livenessProbe", "readinessProbe"} {
		if got := c.get(p, "httpGet", "scheme"); got != "HTTPS" {
			t.Errorf("%s scheme %v, want HTTPS", p, got)
		}
	}
	cfg := loadRendered(t, objs["ConfigMap"].get("data", "strait.yaml").(string), nil)
	if cfg.TLSCertFile != "/etc/strait/tls/tls.crt" || cfg.TLSKeyFile != "/etc/strait/tls/tls.key" {
		t.Errorf("TLS files %q %q", cfg.TLSCertFile, cfg.TLSKeyFile)
	}
	if got := c.get("volumeMounts", 1, "mountPath"); got != "/etc/strait/tls" {
		t.Errorf("TLS mounted at %v", got)
	}
	// Kubernetes cannot make a mount point inside a ConfigMap volume.
	mounts, _ := c.get("volumeMounts").([]any)
	for i, a := range mounts {
		for j, b := range mounts {
			pa, _ := a.(map[string]any)["mountPath"].(string)
			pb, _ := b.(map[string]any)["mountPath"].(string)
			if i != j && strings.HasPrefix(pb, strings.TrimSuffix(pa, "/")+"/") {
				t.Errorf("%s is mounted inside %s", pb, pa)
			}
		}
	}

	// Without secrets there is no Secret and no envFrom.
	objs, err = render(t, helm, "config: {destination_bootstrap: 'k:9092', allow_unauthenticated: true}\n")
	if err != nil {
		t.Fatal(err)
	}
	if objs["Secret"] != nil || objs["Deployment"].get("spec", "template", "spec", "containers", 0, "envFrom") != nil {
		t.Error("a Secret or envFrom without any secret given")
	}

	// One replica: no disruption budget, which would block every drain.
	objs, err = render(t, helm, "replicaCount: 1\nconfig: {destination_bootstrap: 'k:9092', allow_unauthenticated: true}\n")
	if err != nil {
		t.Fatal(err)
	}
	if objs["PodDisruptionBudget"] != nil {
		t.Error("a PodDisruptionBudget for one replica")
	}
}

func keys(m map[string]manifest) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func keysOf(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
