package linkconfig

import (
	"errors"
	"fmt"
	"strings"
)

// Configs that Confluent documents and Strait accepts without acting on
// them. Tools written for Confluent send them (the Terraform provider and
// the Confluent CLI put local.* credentials and the peer's connection
// mode in every bidirectional link they create; Java clients' tuning keys
// come with copied configs), so refusing them would break those tools.
// Each is validated as Confluent would, stored, and read back (credentials
// hidden); docs/api.md says, for each, why it changes nothing in Strait.
//
//   - local.*: the credentials a link uses for its own cluster. Strait
//     reaches its own cluster, the destination, with the daemon's
//     settings; on a bidirectional link each side has its own Strait.
//   - remote.link.connection.mode: the peer's connection mode; Strait
//     links always connect out.
//   - client, socket and fetcher tuning: franz-go's own settings apply
//     (request.timeout.ms and the replica.fetch.* sizes Strait does use).

// Local, remote and tuning configs.
const (
	LocalSecurityProtocol = "local.security.protocol"
	LocalSASLMechanism    = "local.sasl.mechanism"
	LocalSASLJAASConfig   = "local.sasl.jaas.config"
	RemoteConnectionMode  = "remote.link.connection.mode"
)

// Defs that have no effect in Strait: NoEffect says why, for the docs and
// for the config's read-back.
var noEffect = map[string]string{}

// NoEffect reports whether name is accepted without effect, and why.
func NoEffect(name string) (string, bool) {
	why, ok := noEffect[name]
	return why, ok
}

func inert(why string, d Def) {
	noEffect[d.Name] = why
	def(d)
}

func anyValue(string) error { return nil }

func init() {
	const local = "credentials for the link's own cluster: Strait reaches it with the daemon's settings"
	protocols := oneOf("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
	inert(local, Def{Name: LocalSecurityProtocol, Default: "PLAINTEXT", Validate: protocols})
	inert(local, Def{Name: LocalSASLMechanism, Default: "GSSAPI", Validate: oneOf("GSSAPI", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")})
	inert(local, Def{Name: LocalSASLJAASConfig, Sensitive: true, Validate: func(v string) error { _, err := ParseJAAS(v); return err }})
	inert(local, Def{Name: "local.listener.name", Validate: anyValue})
	inert(local, Def{Name: "local.listener", Validate: anyValue}) // the Confluent CLI's spelling
	inert(local, Def{Name: "local.sasl.login.callback.handler.class", Validate: anyValue})
	inert(local, Def{Name: "local.sasl.oauthbearer.token.endpoint.url", Validate: anyValue})
	inert(local, Def{Name: "local.ssl.truststore.type", Default: "JKS", Validate: oneOf("JKS", "PKCS12", "PEM")})
	inert(local, Def{Name: "local.ssl.truststore.certificates", Validate: validPEM})
	inert(local, Def{Name: "local.ssl.keystore.type", Default: "JKS", Validate: oneOf("JKS", "PKCS12", "PEM")})
	inert(local, Def{Name: "local.ssl.keystore.certificate.chain", Validate: validPEM})
	inert(local, Def{Name: "local.ssl.keystore.key", Sensitive: true, Validate: validPEM})
	inert(local, Def{Name: "local.ssl.key.password", Sensitive: true})
	inert(local, Def{Name: "local.ssl.endpoint.identification.algorithm", Default: "https", Validate: oneOf("https", "")})
	inert("the peer link's connection mode: Strait links connect out, to a peer that may too",
		Def{Name: RemoteConnectionMode, CreateOnly: true, Validate: oneOf("OUTBOUND", "INBOUND")})

	const tuning = "client tuning of Kafka's Java clients; franz-go's own settings apply"
	for name, dflt := range map[string]string{
		"metadata.max.age.ms": "300000", "retry.backoff.ms": "100", "connections.max.idle.ms": "600000",
		"socket.connection.setup.timeout.ms": "10000", "socket.connection.setup.timeout.max.ms": "30000",
		"reconnect.backoff.ms": "50", "reconnect.backoff.max.ms": "1000",
		"replica.fetch.min.bytes": "1", "replica.fetch.backoff.ms": "1000", "replica.socket.timeout.ms": "30000",
		"replica.socket.receive.buffer.bytes": "-1",
	} {
		// A duration is never negative (Kafka's clients refuse one); a
		// socket buffer of -1 is the system's default.
		least := int64(0)
		if !strings.HasSuffix(name, ".ms") {
			least = -1
		}
		inert(tuning, Def{Name: name, Default: dflt, Validate: intRange(least, 1<<31-1)})
	}
	inert(tuning, Def{Name: "client.dns.lookup", Default: "use_all_dns_ips", Validate: oneOf("use_all_dns_ips", "resolve_canonical_bootstrap_servers_only")})
	inert("TLS versions and suites are Go's: TLS 1.2 and 1.3 with modern suites", Def{Name: "ssl.enabled.protocols", Default: "TLSv1.2,TLSv1.3", Validate: anyValue})
	inert("TLS versions and suites are Go's: TLS 1.2 and 1.3 with modern suites", Def{Name: "ssl.protocol", Default: "TLSv1.3", Validate: anyValue})
	inert("TLS versions and suites are Go's: TLS 1.2 and 1.3 with modern suites", Def{Name: "ssl.cipher.suites", Validate: anyValue})
	inert("Kerberos (GSSAPI) is not supported: use PLAIN, SCRAM or OAUTHBEARER", Def{Name: "sasl.kerberos.service.name", Validate: anyValue})
	inert(tuning, Def{Name: "sasl.client.callback.handler.class", Validate: anyValue})
}

// errSourceInitiated refuses what a source-initiated link needs.
var errSourceInitiated = errors.New("source-initiated links are not supported by Strait: create the link on the destination, connecting out (OUTBOUND) to the source")

// validLinkMode checks link.mode.
func validLinkMode(v string) error {
	switch v {
	case ModeDestination, ModeBidirectional:
		return nil
	case "SOURCE":
		return errSourceInitiated
	}
	return fmt.Errorf("'%s' is not DESTINATION or BIDIRECTIONAL", v)
}

// validConnectionMode checks connection.mode.
func validConnectionMode(v string) error {
	switch v {
	case "OUTBOUND":
		return nil
	case "INBOUND":
		return errSourceInitiated
	}
	return fmt.Errorf("'%s' is not OUTBOUND", v)
}
