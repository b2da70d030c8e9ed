{{/* The release's name for its objects. */}}
{{- define "strait.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "strait.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "strait.selectorLabels" -}}
app.kubernetes.io/name: {{ include "strait.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "strait.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "strait.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "strait.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "strait.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The Secret the daemon's variables come from, "" for none. */}}
{{- define "strait.secretName" -}}
{{- if .Values.existingSecret -}}
{{- .Values.existingSecret -}}
{{- else if or .Values.secrets.secretsKey .Values.secrets.secretsPreviousKeys .Values.secrets.destinationSaslPassword -}}
{{- include "strait.fullname" . -}}
{{- end -}}
{{- end -}}

{{/* strait.yaml: the values' config, listening on the container port, with
the TLS files when tls.existingSecret is set. Rendering stops with a clear
message where the daemon would refuse to start. */}}
{{- define "strait.config" -}}
{{- $cfg := deepCopy .Values.config -}}
{{- if not $cfg.destination_bootstrap -}}
{{- fail "config.destination_bootstrap is required: the destination cluster's bootstrap servers" -}}
{{- end -}}
{{- $_ := set $cfg "http" "0.0.0.0:8090" -}}
{{- if .Values.tls.existingSecret -}}
{{- $_ := set $cfg "tls_cert_file" "/etc/strait/tls/tls.crt" -}}
{{- $_ := set $cfg "tls_key_file" "/etc/strait/tls/tls.key" -}}
{{- end -}}
{{- $auth := $cfg.auth | default dict -}}
{{- if not (or $auth.api_keys $auth.jwt $auth.client_certificates $cfg.allow_unauthenticated) -}}
{{- fail "the API listens on the pod's addresses: configure config.auth (api_keys, jwt or client_certificates), or set config.allow_unauthenticated: true if something else protects it" -}}
{{- end -}}
{{- if not $cfg.auth -}}
{{- $_ := unset $cfg "auth" -}}
{{- end -}}
{{- range $k := list "secrets_key" "secrets_previous_keys" "destination_sasl_password" -}}
{{- if hasKey $cfg $k -}}
{{- fail (printf "config.%s is a secret: give it in secrets (or existingSecret), not in the ConfigMap" $k) -}}
{{- end -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}

{{- define "strait.probeScheme" -}}
{{- if .Values.tls.existingSecret -}}HTTPS{{- else -}}HTTP{{- end -}}
{{- end -}}
