// Package api holds the JSON wire types of Strait's REST API (types.go),
// shared by the server (internal/restapi) and the client
// (internal/client), and Confluent's OpenAPI specs (see SOURCE.md),
// embedded for the tests that validate Strait's responses against them.
// The linker leaves the specs out of binaries that do not use them.
package api

import _ "embed"

// CloudSpec is Confluent Cloud's Kafka REST v3 spec, authoritative for the
// cluster-linking endpoints.
//
//go:embed ccloud-kafka-rest-v3-openapi.yaml
var CloudSpec []byte

// PlatformSpec is Confluent Platform's Kafka REST v3 spec; it has
// GET /clusters, which the Cloud spec lacks.
//
//go:embed cp-kafka-rest-v3-openapi.yaml
var PlatformSpec []byte
