package linkconfig

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/strait-dev/strait/internal/kafkaclient"
	"github.com/strait-dev/strait/internal/testutil"
)

// testPEM returns a certificate and its key, PEM-encoded.
func testPEM(t *testing.T) (certPEM, keyPEM string) {
	t.Helper()
	c, k := testutil.NewCA(t, "strait-test-ca").Issue(t, "strait-link")
	return string(c), string(k)
}

const (
	plainJAAS = PlainLoginModule + ` required username="alice" password="alice-secret";`
	scramJAAS = ScramLoginModule + ` required username="bob" password="bob-secret";`
)

// errKind classifies what Check should answer.
type errKind int

const (
	wantOK errKind = iota
	wantUnknown
	wantReadOnly
	wantInvalid
)

func TestCheck(t *testing.T) {
	cert, key := testPEM(t)
	tests := []struct {
		name, value string
		creating    bool
		want        errKind
		bug         string // non-empty: a known bug, the case is skipped
	}{
		// Names.
		{"no.such.config", "x", true, wantUnknown, ""},
		{"", "", true, wantUnknown, ""},
		{"Bootstrap.Servers", "h:9092", true, wantUnknown, ""},
		{"bootstrap.servers ", "h:9092", true, wantUnknown, ""},

		// Read-only configs, even at creation.
		{"cluster.link.retry.timeout.ms", "300000", true, wantReadOnly, ""},
		{"cluster.link.retry.timeout.ms", "300000", false, wantReadOnly, ""},
		{"num.cluster.link.fetchers", "1", true, wantReadOnly, ""},

		// Create-only configs.
		{LinkMode, "DESTINATION", true, wantOK, ""},
		{LinkMode, "DESTINATION", false, wantReadOnly, ""},
		{LinkMode, "SOURCE", true, wantInvalid, ""},
		{LinkMode, "BIDIRECTIONAL", true, wantOK, ""},
		{LinkMode, "SOURCE", true, wantInvalid, ""},
		{ConnectionMode, "OUTBOUND", true, wantOK, ""},
		{ConnectionMode, "OUTBOUND", false, wantReadOnly, ""},
		{ConnectionMode, "INBOUND", true, wantInvalid, ""},
		{ClusterLinkPrefix, "dr.", true, wantOK, ""},
		{ClusterLinkPrefix, "dr.", false, wantReadOnly, ""},

		// Booleans.
		{ClusterLinkPaused, "true", false, wantOK, ""},
		{ClusterLinkPaused, "false", false, wantOK, ""},
		{ClusterLinkPaused, "TRUE", false, wantInvalid, ""},
		{ClusterLinkPaused, "1", false, wantInvalid, ""},
		{ClusterLinkPaused, "yes", false, wantInvalid, ""},
		{ClusterLinkPaused, "", false, wantInvalid, ""},
		{ClusterLinkPaused, " true", false, wantInvalid, ""},
		{ConsumerOffsetSyncEnable, "true", false, wantOK, ""},
		{ConsumerOffsetSyncEnable, "on", false, wantInvalid, ""},
		{ACLSyncEnable, "false", false, wantOK, ""},
		{ACLSyncEnable, "t", false, wantInvalid, ""},
		{AutoCreateEnable, "true", false, wantOK, ""},
		{ConsumerGroupPrefix, "f", false, wantInvalid, ""},

		// Integer ranges.
		{AvailabilityCheckMs, "100", false, wantOK, ""},
		{AvailabilityCheckMs, "3600000", false, wantOK, ""},
		{AvailabilityCheckMs, "99", false, wantInvalid, ""},
		{AvailabilityCheckMs, "3600001", false, wantInvalid, ""},
		{AvailabilityCheckMs, "-1", false, wantInvalid, ""},
		{AvailabilityCheckMs, "abc", false, wantInvalid, ""},
		{AvailabilityCheckMs, "", false, wantInvalid, ""},
		{AvailabilityCheckMs, "1e3", false, wantInvalid, ""},
		{AvailabilityCheckMs, "1000.0", false, wantInvalid, ""},
		{AvailabilityCheckMs, " 1000", false, wantInvalid, ""},
		{AvailabilityCheckMs, "9223372036854775808", false, wantInvalid, ""},
		{AvailabilityThreshold, "1", false, wantOK, ""},
		{AvailabilityThreshold, "1000", false, wantOK, ""},
		{AvailabilityThreshold, "0", false, wantInvalid, ""},
		{AvailabilityThreshold, "1001", false, wantInvalid, ""},
		{RequestTimeoutMs, "1000", false, wantOK, ""},
		{RequestTimeoutMs, "999", false, wantInvalid, ""},
		{RequestTimeoutMs, "600001", false, wantInvalid, ""},
		{ReplicaFetchMaxBytes, "1024", false, wantOK, ""},
		{ReplicaFetchMaxBytes, "1073741824", false, wantOK, ""},
		{ReplicaFetchMaxBytes, "1023", false, wantInvalid, ""},
		{ReplicaFetchMaxBytes, "1073741825", false, wantInvalid, ""},
		{ReplicaFetchWaitMaxMs, "0", false, wantOK, ""},
		{ReplicaFetchWaitMaxMs, "30000", false, wantOK, ""},
		{ReplicaFetchWaitMaxMs, "-1", false, wantInvalid, ""},
		{ReplicaFetchWaitMaxMs, "30001", false, wantInvalid, ""},
		{ReplicaFetchResponseMax, "512", false, wantInvalid, ""},
		{ConsumerOffsetSyncMs, "999", false, wantInvalid, ""},
		{ACLSyncMs, "86400000", false, wantOK, ""},
		{TopicConfigSyncMs, "86400001", false, wantInvalid, ""},

		// Bootstrap servers.
		{BootstrapServers, "h:9092", false, wantOK, ""},
		{BootstrapServers, "h1:9092,h2:9093", false, wantOK, ""},
		{BootstrapServers, " h1:9092 , h2:9093 ", false, wantOK, ""},
		{BootstrapServers, "h1:9092,,h2:9093,", false, wantOK, ""},
		{BootstrapServers, "SASL_SSL://h:9092", false, wantOK, ""},
		{BootstrapServers, "PLAINTEXT://h1:9092,SSL://h2:9093", false, wantOK, ""},
		{BootstrapServers, "[::1]:9092", false, wantOK, ""},
		{BootstrapServers, "SASL_SSL://[2001:db8::1]:9092", false, wantOK, ""},
		{BootstrapServers, "10.0.0.1:9092", false, wantOK, ""},
		{BootstrapServers, "kafka_1.internal-dc:65535", false, wantOK, ""},
		{BootstrapServers, "", false, wantInvalid, ""},
		{BootstrapServers, " , ", false, wantInvalid, ""},
		{BootstrapServers, "h", false, wantInvalid, ""},
		{BootstrapServers, "h:", false, wantInvalid, ""},
		{BootstrapServers, ":9092", false, wantInvalid, ""},
		{BootstrapServers, "h:port", false, wantInvalid, ""},
		{BootstrapServers, "h:123456", false, wantInvalid, ""},
		{BootstrapServers, "h:9092/x", false, wantInvalid, ""},
		{BootstrapServers, "h 1:9092", false, wantInvalid, ""},
		{BootstrapServers, "h1:9092;h2:9092", false, wantInvalid, ""},
		{BootstrapServers, "SASL_SSL://", false, wantInvalid, ""},
		{BootstrapServers, "::1:9092", false, wantInvalid, ""},
		{BootstrapServers, "h1:9092,bad", false, wantInvalid, ""},
		{BootstrapServers, "h:99999", false, wantInvalid, ""},
		{BootstrapServers, "h:65536", false, wantInvalid, ""},

		// Prefix.
		{ClusterLinkPrefix, "a", true, wantOK, ""},
		{ClusterLinkPrefix, "abcdefghijkl", true, wantOK, ""},
		{ClusterLinkPrefix, "A-b_c.9", true, wantOK, ""},
		{ClusterLinkPrefix, "abcdefghijklm", true, wantInvalid, ""},
		{ClusterLinkPrefix, "", true, wantInvalid, ""},
		{ClusterLinkPrefix, "dr/", true, wantInvalid, ""},
		{ClusterLinkPrefix, "dr prefix", true, wantInvalid, ""},
		{ClusterLinkPrefix, "dr:", true, wantInvalid, ""},
		{ClusterLinkPrefix, "é", true, wantInvalid, ""},

		// Start offset spec.
		{MirrorStartOffsetSpec, "earliest", false, wantOK, ""},
		{MirrorStartOffsetSpec, "latest", false, wantOK, ""},
		{MirrorStartOffsetSpec, "2024-01-02T15:04:05Z", false, wantOK, ""},
		{MirrorStartOffsetSpec, "2024-01-02T15:04:05.123+02:00", false, wantOK, ""},
		{MirrorStartOffsetSpec, "2024-01-02T15:04:05.123456789-07:00", false, wantOK, ""},
		{MirrorStartOffsetSpec, "2024-01-02", false, wantInvalid, ""},
		{MirrorStartOffsetSpec, "2024-01-02 15:04:05", false, wantInvalid, ""},
		{MirrorStartOffsetSpec, "2024-13-02T15:04:05Z", false, wantInvalid, ""},
		{MirrorStartOffsetSpec, "1700000000000", false, wantInvalid, ""},
		{MirrorStartOffsetSpec, "yesterday", false, wantInvalid, ""},
		{MirrorStartOffsetSpec, "", false, wantInvalid, ""},

		// Enumerations.
		{SecurityProtocol, "PLAINTEXT", false, wantOK, ""},
		{SecurityProtocol, "SSL", false, wantOK, ""},
		{SecurityProtocol, "SASL_PLAINTEXT", false, wantOK, ""},
		{SecurityProtocol, "SASL_SSL", false, wantOK, ""},
		{SecurityProtocol, "sasl_ssl", false, wantInvalid, ""},
		{SecurityProtocol, "TLS", false, wantInvalid, ""},
		{SASLMechanism, "PLAIN", false, wantOK, ""},
		{SASLMechanism, "SCRAM-SHA-256", false, wantOK, ""},
		{SASLMechanism, "SCRAM-SHA-512", false, wantOK, ""},
		{SASLMechanism, "GSSAPI", false, wantInvalid, ""},
		{SASLMechanism, "OAUTHBEARER", false, wantOK, ""},
		{SASLMechanism, "oauthbearer", false, wantInvalid, ""},
		{SASLOAuthTokenURL, "https://idp.example/oauth2/token", false, wantOK, ""},
		{SASLOAuthTokenURL, "http://127.0.0.1:8080/token", false, wantOK, ""},
		{SASLOAuthTokenURL, "http://idp.example/token", false, wantInvalid, ""},
		{SASLOAuthTokenURL, "/token", false, wantInvalid, ""},
		{SASLLoginCallbackHandler, "org.apache.kafka.common.security.oauthbearer.secured.OAuthBearerLoginCallbackHandler", false, wantOK, ""},
		{SASLLoginCallbackHandler, "com.example.MyHandler", false, wantInvalid, ""},
		{SSLTruststoreType, "PEM", false, wantOK, ""},
		{SSLTruststoreType, "PKCS12", false, wantInvalid, ""},
		{SSLKeystoreType, "PEM", false, wantOK, ""},
		{SSLEndpointAlgorithm, "https", false, wantOK, ""},
		{SSLEndpointAlgorithm, "", false, wantOK, ""},
		{SSLEndpointAlgorithm, "http", false, wantInvalid, ""},

		// Structured values.
		{SASLJAASConfig, plainJAAS, false, wantOK, ""},
		{SASLJAASConfig, scramJAAS, false, wantOK, ""},
		{SASLJAASConfig, "username=alice password=x", false, wantInvalid, ""},
		{SSLTruststoreCerts, cert, false, wantOK, ""},
		{SSLTruststoreCerts, "not a certificate", false, wantInvalid, ""},
		{SSLKeystoreChain, cert, false, wantOK, ""},
		{SSLKeystoreKey, key, false, wantOK, ""},
		{SSLKeystoreKey, "", false, wantInvalid, ""},
		{SSLKeyPassword, "anything goes", false, wantOK, ""},
		{ConsumerOffsetFilters, `{"groupFilters":[{"name":"*","patternType":"LITERAL","filterType":"INCLUDE"}]}`, false, wantOK, ""},
		{ConsumerOffsetFilters, "", false, wantOK, ""},
		{ConsumerOffsetFilters, `{"groupFilters":`, false, wantInvalid, ""},
		{ConsumerOffsetFilters, `{"groupFilters":[]}]`, false, wantInvalid, ""},
		{ConsumerOffsetFilters, `{"groupFilters":[]}}`, false, wantInvalid, ""},
		{ConsumerOffsetFilters, `{"groupFilters":[]} {}`, false, wantInvalid, ""},
		{ConsumerOffsetFilters, "{\"groupFilters\":[]} \n\t", false, wantOK, ""},
		{AutoCreateFilters, `{"topicFilters":[]}]`, false, wantInvalid, ""},
		{ACLFilters, `{"aclFilters":[]}}`, false, wantInvalid, ""},
		{ACLFilters, "not json", false, wantInvalid, ""},
		{AutoCreateFilters, `{"topicFilters":[]}`, false, wantOK, ""},
		{TopicConfigSyncInclude, "retention.ms,cleanup.policy", false, wantOK, ""},
	}
	for _, tc := range tests {
		name := tc.name + "=" + tc.value
		if tc.creating {
			name += " (create)"
		}
		if len(name) > 80 {
			name = name[:80]
		}
		t.Run(name, func(t *testing.T) {
			if tc.bug != "" {
				t.Skip("bug: " + tc.bug)
			}
			err := Check(tc.name, tc.value, tc.creating)
			switch tc.want {
			case wantOK:
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
			case wantUnknown:
				if !errors.Is(err, ErrUnknown) {
					t.Fatalf("err %v, want ErrUnknown", err)
				}
			case wantReadOnly:
				if !errors.Is(err, ErrReadOnly) {
					t.Fatalf("err %v, want ErrReadOnly", err)
				}
			case wantInvalid:
				if err == nil {
					t.Fatal("value accepted")
				}
				if errors.Is(err, ErrUnknown) || errors.Is(err, ErrReadOnly) {
					t.Fatalf("err %v, want an invalid value error", err)
				}
				if !strings.Contains(err.Error(), tc.name) {
					t.Errorf("error %q does not name the config", err)
				}
			}
		})
	}
}

// TestCatalog checks the catalog itself: sorted names, lookups, and that
// the defaults a user can set back are accepted by their own validators.
func TestCatalog(t *testing.T) {
	names := Names()
	if !slices.IsSorted(names) {
		t.Errorf("Names not sorted: %v", names)
	}
	for _, want := range []string{BootstrapServers, SASLJAASConfig, ClusterLinkPrefix, MirrorStartOffsetSpec, "num.cluster.link.fetchers"} {
		if !slices.Contains(names, want) {
			t.Errorf("Names lacks %s", want)
		}
	}
	// Documented as unusable defaults (GSSAPI, JKS): not settable.
	unusable := map[string]bool{SASLMechanism: true, SSLTruststoreType: true, SSLKeystoreType: true}
	for _, n := range names {
		t.Run(n, func(t *testing.T) {
			d, found := Lookup(n)
			if !found || d.Name != n {
				t.Fatalf("Lookup(%s) = %+v, %v", n, d, found)
			}
			if d.Default == "" || d.ReadOnly || unusable[n] || d.Validate == nil {
				return
			}
			if err := d.Validate(d.Default); err != nil {
				t.Errorf("default %q refused by its own validator: %v", d.Default, err)
			}
		})
	}
	sensitive := []string{SASLJAASConfig, SSLKeystoreKey, SSLKeyPassword}
	for _, n := range sensitive {
		if d, _ := Lookup(n); !d.Sensitive {
			t.Errorf("%s is not sensitive", n)
		}
	}
	if d, _ := Lookup(BootstrapServers); d.Sensitive {
		t.Error("bootstrap.servers marked sensitive")
	}
	if _, found := Lookup("nope"); found {
		t.Error("Lookup of an unknown name succeeded")
	}
}

func TestSetAccessors(t *testing.T) {
	s := Set{BootstrapServers: " a:1 , SASL_SSL://b:2,, ", ClusterLinkPaused: "true", RequestTimeoutMs: "1500", ClusterLinkPrefix: "dr."}
	tests := []struct {
		what      string
		got, want any
	}{
		{"Bootstrap", s.Bootstrap(), []string{"a:1", "SASL_SSL://b:2"}},
		{"Paused", s.Paused(), true},
		{"Prefix", s.Prefix(), "dr."},
		{"Int set", s.Int(RequestTimeoutMs), int64(1500)},
		{"Duration set", s.Duration(RequestTimeoutMs), 1500 * time.Millisecond},
		{"Duration default", s.Duration(AvailabilityCheckMs), 60 * time.Second},
		{"Get default", s.Get(MirrorStartOffsetSpec), "earliest"},
		{"Get unknown", s.Get("nope"), ""},
		{"IsSet set", s.IsSet(ClusterLinkPaused), true},
		{"IsSet default", s.IsSet(SecurityProtocol), false},
		{"Bool default", s.Bool(ACLSyncEnable), false},
		{"empty Paused", Set{}.Paused(), false},
		{"empty Prefix", Set{}.Prefix(), ""},
		{"empty Bootstrap", Set{}.Bootstrap(), []string(nil)},
		{"nil Set Get", Set(nil).Get(SecurityProtocol), "PLAINTEXT"},
	}
	for _, tc := range tests {
		t.Run(tc.what, func(t *testing.T) {
			if !reflect.DeepEqual(tc.got, tc.want) {
				t.Fatalf("got %#v, want %#v", tc.got, tc.want)
			}
		})
	}
	t.Run("Clone is independent", func(t *testing.T) {
		c := s.Clone()
		c[ClusterLinkPaused] = "false"
		delete(c, ClusterLinkPrefix)
		if !s.Paused() || s.Prefix() != "dr." {
			t.Fatal("changing the clone changed the original")
		}
		if !reflect.DeepEqual(Set{}.Clone(), Set{}) {
			t.Fatal("clone of an empty set is not empty")
		}
	})
}

func TestParseJAAS(t *testing.T) {
	tests := []struct {
		name, in string
		want     JAAS
		wantErr  string // substring of the error; "" means success
		bug      string
	}{
		{name: "plain quoted", in: plainJAAS, want: JAAS{Module: PlainLoginModule, Username: "alice", Password: "alice-secret"}},
		{name: "scram quoted", in: scramJAAS, want: JAAS{Module: ScramLoginModule, Username: "bob", Password: "bob-secret"}},
		{name: "escaped quotes and backslash", in: PlainLoginModule + ` required username="a\"l" password="p\"w\\d";`, want: JAAS{Module: PlainLoginModule, Username: `a"l`, Password: `p"w\d`}},
		{name: "spaces, semicolon and equals inside quotes", in: PlainLoginModule + ` required username="a b" password="x;y=z ";`, want: JAAS{Module: PlainLoginModule, Username: "a b", Password: "x;y=z "}},
		{name: "bare values", in: ScramLoginModule + ` required username=bob password=s3cret;`, want: JAAS{Module: ScramLoginModule, Username: "bob", Password: "s3cret"}},
		{name: "bare values without semicolon", in: ScramLoginModule + ` required username=bob password=s3cret`, want: JAAS{Module: ScramLoginModule, Username: "bob", Password: "s3cret"}},
		{name: "mixed quoted and bare", in: PlainLoginModule + ` required username=alice password="p w";`, want: JAAS{Module: PlainLoginModule, Username: "alice", Password: "p w"}},
		{name: "options reversed and extra", in: PlainLoginModule + ` required password="p" tokenauth="false" username="u";`, want: JAAS{Module: PlainLoginModule, Username: "u", Password: "p"}},
		{name: "surrounding and repeated whitespace", in: "  " + PlainLoginModule + `   required   username="u"    password="p"  ;  `, want: JAAS{Module: PlainLoginModule, Username: "u", Password: "p"}},
		{name: "spaces around equals", in: PlainLoginModule + ` required username = "u" password= "p";`, want: JAAS{Module: PlainLoginModule, Username: "u", Password: "p"}},
		{name: "newline between quoted options", in: PlainLoginModule + " required username=\"u\"\n  password=\"p\";", want: JAAS{Module: PlainLoginModule, Username: "u", Password: "p"}},
		{name: "newline after control flag", in: PlainLoginModule + " required\n  username=\"u\"\n  password=\"p\";", want: JAAS{Module: PlainLoginModule, Username: "u", Password: "p"}},
		{name: "tab between bare options", in: PlainLoginModule + " required username=u\tpassword=p;", want: JAAS{Module: PlainLoginModule, Username: "u", Password: "p"}},

		{name: "missing password", in: PlainLoginModule + ` required username="u";`, wantErr: "password"},
		{name: "missing username", in: PlainLoginModule + ` required password="p";`, wantErr: "username"},
		{name: "empty password", in: PlainLoginModule + ` required username="u" password="";`, wantErr: "password"},
		{name: "no options", in: PlainLoginModule + ` required;`, wantErr: "username"},
		{name: "unsupported module", in: `com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true principal="x";`, wantErr: "Krb5LoginModule"},
		{name: "oauth module without client credentials", in: OAuthBearerModule + ` required;`, wantErr: "clientId"},
		{name: "oauth module without secret", in: OAuthBearerModule + ` required clientId="c";`, wantErr: "clientSecret"},
		{name: "oauth client credentials", in: OAuthBearerModule + ` required clientId="strait" clientSecret="s3" scope="kafka" extension_logicalCluster="lkc-1" extension_identityPoolId="pool-2";`,
			want: JAAS{Module: OAuthBearerModule, ClientID: "strait", ClientSecret: "s3", Scope: "kafka", Extensions: map[string]string{"logicalCluster": "lkc-1", "identityPoolId": "pool-2"}}},
		{name: "module with different case", in: strings.ToLower(PlainLoginModule) + ` required username="u" password="p";`, wantErr: "not supported"},
		{name: "optional flag", in: PlainLoginModule + ` optional username="u" password="p";`, wantErr: "required"},
		{name: "sufficient flag", in: PlainLoginModule + ` sufficient username="u" password="p";`, wantErr: "required"},
		{name: "no flag", in: PlainLoginModule + ` username="u" password="p";`, wantErr: "required"},
		{name: "module only", in: PlainLoginModule + `;`, wantErr: "expected"},
		{name: "empty", in: ``, wantErr: "expected"},
		{name: "semicolon only", in: `;`, wantErr: "expected"},
		{name: "unterminated quote", in: PlainLoginModule + ` required username="u" password="p;`, wantErr: "unterminated"},
		{name: "escaped closing quote", in: PlainLoginModule + ` required username="u" password="p\";`, wantErr: "unterminated"},
		{name: "option without equals", in: PlainLoginModule + ` required username;`, wantErr: "key=value"},
		{name: "empty key", in: PlainLoginModule + ` required ="u" password="p";`, wantErr: "key=value"},
		{name: "quote in key", in: PlainLoginModule + ` required user"name="u" password="p";`, wantErr: "key=value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.bug != "" {
				t.Skip("bug: " + tc.bug)
			}
			got, err := ParseJAAS(tc.in)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("no error, got %+v", got)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %q does not mention %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseJAAS: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func FuzzParseJAAS(f *testing.F) {
	for _, s := range []string{
		plainJAAS, scramJAAS, "", ";", "a b", PlainLoginModule + " required",
		PlainLoginModule + ` required username="a\" password="b`,
		PlainLoginModule + ` required username=u password=p`,
		PlainLoginModule + ` required ="x"`,
		PlainLoginModule + " required username=\"\\",
		"\u00a0" + PlainLoginModule + "\u00a0required username=u password=p;",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		j, err := ParseJAAS(s)
		if err != nil {
			return
		}
		switch j.Module {
		case PlainLoginModule, ScramLoginModule:
			if j.Username == "" || j.Password == "" {
				t.Fatalf("accepted empty credentials: %+v", j)
			}
		case OAuthBearerModule:
			if j.ClientID == "" || j.ClientSecret == "" {
				t.Fatalf("accepted empty client credentials: %+v", j)
			}
		default:
			t.Fatalf("accepted module %q", j.Module)
		}
	})
}

func TestSetSASL(t *testing.T) {
	tests := []struct {
		name    string
		set     Set
		want    SASLSettings
		wantErr string
	}{
		{"PLAIN", Set{SecurityProtocol: "SASL_SSL", SASLMechanism: "PLAIN", SASLJAASConfig: plainJAAS}, SASLSettings{Mechanism: "PLAIN", Username: "alice", Password: "alice-secret"}, ""},
		{"SCRAM-SHA-256", Set{SecurityProtocol: "SASL_PLAINTEXT", SASLMechanism: "SCRAM-SHA-256", SASLJAASConfig: scramJAAS}, SASLSettings{Mechanism: "SCRAM-SHA-256", Username: "bob", Password: "bob-secret"}, ""},
		{"SCRAM-SHA-512", Set{SASLMechanism: "SCRAM-SHA-512", SASLJAASConfig: scramJAAS}, SASLSettings{Mechanism: "SCRAM-SHA-512", Username: "bob", Password: "bob-secret"}, ""},
		{"PLAIN with the SCRAM module", Set{SASLMechanism: "PLAIN", SASLJAASConfig: scramJAAS}, SASLSettings{}, PlainLoginModule},
		{"SCRAM-SHA-256 with the PLAIN module", Set{SASLMechanism: "SCRAM-SHA-256", SASLJAASConfig: plainJAAS}, SASLSettings{}, ScramLoginModule},
		{"SCRAM-SHA-512 with the PLAIN module", Set{SASLMechanism: "SCRAM-SHA-512", SASLJAASConfig: plainJAAS}, SASLSettings{}, ScramLoginModule},
		{"mechanism not set", Set{SecurityProtocol: "SASL_SSL", SASLJAASConfig: plainJAAS}, SASLSettings{}, SASLMechanism},
		{"JAAS not set", Set{SecurityProtocol: "SASL_SSL", SASLMechanism: "PLAIN"}, SASLSettings{}, SASLJAASConfig},
		{"JAAS invalid", Set{SASLMechanism: "PLAIN", SASLJAASConfig: PlainLoginModule + " required username=u;"}, SASLSettings{}, SASLJAASConfig},
		{"OAUTHBEARER", Set{SASLMechanism: "OAUTHBEARER", SASLOAuthTokenURL: "https://idp.example/token", SASLJAASConfig: OAuthBearerModule + ` required clientId="c" clientSecret="s" extension_logicalCluster="lkc-1";`},
			SASLSettings{Mechanism: "OAUTHBEARER", OAuth: &kafkaclient.OAuth{TokenURL: "https://idp.example/token", ClientID: "c", ClientSecret: "s", Extensions: map[string]string{"logicalCluster": "lkc-1"}}}, ""},
		{"OAUTHBEARER without token endpoint", Set{SASLMechanism: "OAUTHBEARER", SASLJAASConfig: OAuthBearerModule + ` required clientId="c" clientSecret="s";`}, SASLSettings{}, SASLOAuthTokenURL},
		{"OAUTHBEARER with the PLAIN module", Set{SASLMechanism: "OAUTHBEARER", SASLOAuthTokenURL: "https://idp.example/token", SASLJAASConfig: plainJAAS}, SASLSettings{}, OAuthBearerModule},
		{"PLAIN with the OAUTHBEARER module", Set{SASLMechanism: "PLAIN", SASLJAASConfig: OAuthBearerModule + ` required clientId="c" clientSecret="s";`}, SASLSettings{}, PlainLoginModule},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.set.SASL()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("SASL: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestSetClient(t *testing.T) {
	cert, key := testPEM(t)
	tests := []struct {
		name    string
		set     Set
		want    kafkaclient.Settings
		wantErr string
	}{
		{
			name: "defaults",
			set:  Set{BootstrapServers: "src:9092"},
			want: kafkaclient.Settings{Bootstrap: []string{"src:9092"}, Protocol: "PLAINTEXT", RequestTimeout: 30 * time.Second, ClientID: "strait-link"},
		},
		{
			name: "SASL_SSL with a PEM truststore",
			set: Set{
				BootstrapServers: "SASL_SSL://b1:9093, b2:9093", SecurityProtocol: "SASL_SSL",
				SASLMechanism: "SCRAM-SHA-512", SASLJAASConfig: scramJAAS,
				SSLTruststoreType: "PEM", SSLTruststoreCerts: cert, RequestTimeoutMs: "5000",
			},
			want: kafkaclient.Settings{
				Bootstrap: []string{"SASL_SSL://b1:9093", "b2:9093"}, Protocol: "SASL_SSL",
				SASLMechanism: "SCRAM-SHA-512", SASLUser: "bob", SASLPassword: "bob-secret",
				CAPEM: cert, RequestTimeout: 5 * time.Second, ClientID: "strait-link",
			},
		},
		{
			name: "mutual TLS without host name check",
			set: Set{
				BootstrapServers: "b:9093", SecurityProtocol: "SSL",
				SSLTruststoreType: "PEM", SSLTruststoreCerts: cert,
				SSLKeystoreType: "PEM", SSLKeystoreChain: cert, SSLKeystoreKey: key,
				SSLEndpointAlgorithm: "",
			},
			want: kafkaclient.Settings{
				Bootstrap: []string{"b:9093"}, Protocol: "SSL", CAPEM: cert, CertPEM: cert, KeyPEM: key,
				SkipHostnameVerification: true, RequestTimeout: 30 * time.Second, ClientID: "strait-link",
			},
		},
		{
			name: "certificates ignored unless the store type is PEM",
			set:  Set{BootstrapServers: "b:9093", SecurityProtocol: "SSL", SSLTruststoreCerts: cert, SSLKeystoreChain: cert, SSLEndpointAlgorithm: "https"},
			want: kafkaclient.Settings{Bootstrap: []string{"b:9093"}, Protocol: "SSL", RequestTimeout: 30 * time.Second, ClientID: "strait-link"},
		},
		{
			name:    "SASL mechanism and module mismatch",
			set:     Set{BootstrapServers: "b:9092", SecurityProtocol: "SASL_PLAINTEXT", SASLMechanism: "PLAIN", SASLJAASConfig: scramJAAS},
			wantErr: "login module",
		},
		{
			name:    "SASL without mechanism",
			set:     Set{BootstrapServers: "b:9092", SecurityProtocol: "SASL_SSL", SASLJAASConfig: plainJAAS},
			wantErr: SASLMechanism,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.set.Client()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Client: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("settings\n got %+v\nwant %+v", got, tc.want)
			}
			// The settings must be usable to build a client.
			if _, err := got.Options(nil); err != nil {
				t.Fatalf("Options: %v", err)
			}
		})
	}
}

func TestCheckSet(t *testing.T) {
	tests := []struct {
		name    string
		set     Set
		wantErr string
	}{
		{"empty", Set{}, BootstrapServers},
		{"nil", nil, BootstrapServers},
		{"only security settings", Set{SecurityProtocol: "SSL"}, BootstrapServers},
		{"bootstrap only", Set{BootstrapServers: "h:9092"}, ""},
		{"SSL needs no SASL", Set{BootstrapServers: "h:9092", SecurityProtocol: "SSL"}, ""},
		{"SASL_SSL complete", Set{BootstrapServers: "h:9092", SecurityProtocol: "SASL_SSL", SASLMechanism: "PLAIN", SASLJAASConfig: plainJAAS}, ""},
		{"SASL_SSL without mechanism", Set{BootstrapServers: "h:9092", SecurityProtocol: "SASL_SSL", SASLJAASConfig: plainJAAS}, SASLMechanism},
		{"SASL_PLAINTEXT without JAAS", Set{BootstrapServers: "h:9092", SecurityProtocol: "SASL_PLAINTEXT", SASLMechanism: "PLAIN"}, SASLJAASConfig},
		{"SASL mismatch", Set{BootstrapServers: "h:9092", SecurityProtocol: "SASL_SSL", SASLMechanism: "SCRAM-SHA-256", SASLJAASConfig: plainJAAS}, ScramLoginModule},
		{"PLAINTEXT ignores an unusable SASL set", Set{BootstrapServers: "h:9092", SASLMechanism: "PLAIN", SASLJAASConfig: scramJAAS}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckSet(tc.set)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("CheckSet: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err %v, want one mentioning %q", err, tc.wantErr)
			}
		})
	}
}
