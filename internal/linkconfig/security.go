package linkconfig

import (
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/strait-dev/strait/internal/kafkaclient"
)

// JAAS is the parsed form of a sasl.jaas.config value.
type JAAS struct {
	// Module is the login module class, e.g.
	// org.apache.kafka.common.security.plain.PlainLoginModule.
	Module   string
	Username string
	Password string
	// ClientID, ClientSecret and Scope are the OAUTHBEARER module's
	// client credentials; Extensions its extension_<name> options.
	ClientID     string
	ClientSecret string
	Scope        string
	Extensions   map[string]string
}

// Known login modules and the SASL mechanisms they serve.
const (
	PlainLoginModule  = "org.apache.kafka.common.security.plain.PlainLoginModule"
	ScramLoginModule  = "org.apache.kafka.common.security.scram.ScramLoginModule"
	OAuthBearerModule = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule"
)

// ParseJAAS parses a JAAS line of the form
//
//	<module> required username="u" password="p";
//	<oauth module> required clientId="c" clientSecret="s" scope="x" extension_k="v";
//
// Values may be quoted with double quotes (with backslash escapes) or bare.
// Only the PLAIN, SCRAM and OAUTHBEARER login modules are accepted.
func ParseJAAS(v string) (JAAS, error) {
	var j JAAS
	s := strings.TrimSpace(v)
	s = strings.TrimSuffix(s, ";")
	fields := strings.Fields(s)
	if len(fields) < 2 {
		return j, errors.New("expected '<LoginModule> required username=\"...\" password=\"...\";'")
	}
	j.Module = fields[0]
	if j.Module != PlainLoginModule && j.Module != ScramLoginModule && j.Module != OAuthBearerModule {
		return j, fmt.Errorf("login module '%s' is not supported (use %s, %s or %s)", j.Module, PlainLoginModule, ScramLoginModule, OAuthBearerModule)
	}
	rest := strings.TrimSpace(s[len(j.Module):])
	flag, rest := cutSpace(rest)
	if flag != "required" {
		return j, errors.New("control flag must be 'required'")
	}
	opts, err := parseJAASOptions(rest)
	if err != nil {
		return j, err
	}
	if j.Module == OAuthBearerModule {
		j.ClientID, j.ClientSecret, j.Scope = opts["clientId"], opts["clientSecret"], opts["scope"]
		if j.ClientID == "" || j.ClientSecret == "" {
			return j, errors.New("clientId and clientSecret are required (Strait gets tokens with the client credentials grant)")
		}
		for k, v := range opts {
			if name, ok := strings.CutPrefix(k, "extension_"); ok && name != "" {
				if j.Extensions == nil {
					j.Extensions = map[string]string{}
				}
				j.Extensions[name] = v
			}
		}
		return j, nil
	}
	j.Username, j.Password = opts["username"], opts["password"]
	if j.Username == "" || j.Password == "" {
		return j, errors.New("username and password are required")
	}
	return j, nil
}

func parseJAASOptions(s string) (map[string]string, error) {
	out := map[string]string{}
	for {
		s = strings.TrimSpace(s)
		if s == "" {
			return out, nil
		}
		key, rest, ok := strings.Cut(s, "=")
		key = strings.TrimSpace(key)
		if !ok || key == "" || strings.ContainsAny(key, " \t\"") {
			return nil, errors.New("options must be key=value pairs")
		}
		rest = strings.TrimLeftFunc(rest, unicode.IsSpace)
		var val string
		if strings.HasPrefix(rest, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(rest); i++ {
				c := rest[i]
				if c == '\\' && i+1 < len(rest) {
					i++
					b.WriteByte(rest[i])
					continue
				}
				if c == '"' {
					break
				}
				b.WriteByte(c)
			}
			if i >= len(rest) {
				return nil, fmt.Errorf("unterminated quoted value for '%s'", key)
			}
			val, s = b.String(), rest[i+1:]
		} else {
			val, s = cutSpace(rest)
		}
		out[key] = val
	}
}

// cutSpace splits s at its first run of whitespace (space, tab, newline:
// JAAS lines are often written over several lines).
func cutSpace(s string) (string, string) {
	i := strings.IndexFunc(s, unicode.IsSpace)
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimLeftFunc(s[i:], unicode.IsSpace)
}

// SASLSettings is what a client needs to authenticate with SASL.
type SASLSettings struct {
	Mechanism string
	Username  string
	Password  string
	// OAuth is set for OAUTHBEARER.
	OAuth *kafkaclient.OAuth
}

// SASL returns the link's SASL settings. It is an error to ask when the
// mechanism and the JAAS login module do not fit together.
func (s Set) SASL() (SASLSettings, error) {
	mech := s.Get(SASLMechanism)
	if !s.IsSet(SASLMechanism) {
		return SASLSettings{}, fmt.Errorf("config '%s' is required with security.protocol %s", SASLMechanism, s.Get(SecurityProtocol))
	}
	raw := s.Get(SASLJAASConfig)
	if raw == "" {
		return SASLSettings{}, fmt.Errorf("config '%s' is required with sasl.mechanism %s", SASLJAASConfig, mech)
	}
	j, err := ParseJAAS(raw)
	if err != nil {
		return SASLSettings{}, fmt.Errorf("invalid value for config '%s': %w", SASLJAASConfig, err)
	}
	want := PlainLoginModule
	switch {
	case strings.HasPrefix(mech, "SCRAM-"):
		want = ScramLoginModule
	case mech == "OAUTHBEARER":
		want = OAuthBearerModule
	}
	if j.Module != want {
		return SASLSettings{}, fmt.Errorf("sasl.mechanism %s needs login module %s", mech, want)
	}
	if mech == "OAUTHBEARER" {
		if !s.IsSet(SASLOAuthTokenURL) {
			return SASLSettings{}, fmt.Errorf("config '%s' is required with sasl.mechanism OAUTHBEARER", SASLOAuthTokenURL)
		}
		return SASLSettings{Mechanism: mech, OAuth: &kafkaclient.OAuth{
			TokenURL: s.Get(SASLOAuthTokenURL), ClientID: j.ClientID, ClientSecret: j.ClientSecret, Scope: j.Scope, Extensions: j.Extensions,
		}}, nil
	}
	return SASLSettings{Mechanism: mech, Username: j.Username, Password: j.Password}, nil
}

func validPEM(v string) error {
	if b, _ := pem.Decode([]byte(v)); b == nil {
		return errors.New("must be PEM")
	}
	return nil
}

// Client returns the connection settings for the link's remote cluster.
func (s Set) Client() (kafkaclient.Settings, error) {
	cs := kafkaclient.Settings{
		Bootstrap:                s.Bootstrap(),
		Protocol:                 s.Get(SecurityProtocol),
		RequestTimeout:           s.Duration(RequestTimeoutMs),
		SkipHostnameVerification: s.IsSet(SSLEndpointAlgorithm) && s.Get(SSLEndpointAlgorithm) == "",
		ClientID:                 "strait-link",
	}
	if s.Get(SSLTruststoreType) == "PEM" {
		cs.CAPEM = s.Get(SSLTruststoreCerts)
	}
	if s.Get(SSLKeystoreType) == "PEM" {
		cs.CertPEM = s.Get(SSLKeystoreChain)
		cs.KeyPEM = s.Get(SSLKeystoreKey)
	}
	if strings.HasPrefix(cs.Protocol, "SASL_") {
		sa, err := s.SASL()
		if err != nil {
			return cs, err
		}
		cs.SASLMechanism, cs.SASLUser, cs.SASLPassword, cs.OAuth = sa.Mechanism, sa.Username, sa.Password, sa.OAuth
	}
	return cs, nil
}
