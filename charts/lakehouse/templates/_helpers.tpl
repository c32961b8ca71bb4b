{{/* Names and labels shared by every object of the chart. */}}
{{- define "lakehouse.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "lakehouse.runsNamespace" -}}
{{- default .Release.Namespace .Values.runsNamespace -}}
{{- end -}}

{{- define "lakehouse.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag | toString) -}}
{{- end -}}

{{- define "lakehouse.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "lakehouse.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Endpoints and credentials both components read (credentials only through secretKeyRef). */}}
{{- define "lakehouse.platformEnv" -}}
- {name: LAKEHOUSE_NAMESPACE, value: {{ include "lakehouse.runsNamespace" . | quote }}}
{{- with .Values.s3.endpoint }}
- {name: S3_ENDPOINT_URL, value: {{ . | quote }}}
{{- end }}
- {name: AWS_REGION, value: {{ .Values.s3.region | quote }}}
- {name: S3_PATH_STYLE, value: {{ .Values.s3.pathStyle | toString | quote }}}
{{- with .Values.s3.credentialsSecret }}
- name: AWS_ACCESS_KEY_ID
  valueFrom: {secretKeyRef: {name: {{ . }}, key: {{ $.Values.s3.accessKeyIdKey }}}}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom: {secretKeyRef: {name: {{ . }}, key: {{ $.Values.s3.secretAccessKeyKey }}}}
{{- end }}
- {name: LAKEHOUSE_UPLOADS_BUCKET, value: {{ .Values.s3.buckets.uploads | quote }}}
- {name: LAKEHOUSE_RAW_BUCKET, value: {{ .Values.s3.buckets.raw | quote }}}
- {name: LAKEHOUSE_QUARANTINE_BUCKET, value: {{ .Values.s3.buckets.quarantine | quote }}}
{{ include "lakehouse.kafkaEnv" . }}
{{ include "lakehouse.databaseEnv" . }}
- {name: ICEBERG_CATALOG_URI, value: {{ .Values.catalog.uri | quote }}}
- {name: ICEBERG_WAREHOUSE, value: {{ .Values.catalog.warehouse | quote }}}
- {name: ICEBERG_CATALOG_NAME, value: {{ .Values.catalog.name | quote }}}
{{- with .Values.catalog.tokenSecret }}
- name: ICEBERG_CATALOG_TOKEN
  valueFrom: {secretKeyRef: {name: {{ . }}, key: {{ $.Values.catalog.tokenKey }}}}
{{- end }}
{{- if .Values.contracts }}
- {name: LAKEHOUSE_CONTRACTS_DIR, value: /etc/lakehouse/contracts}
{{- end }}
{{- end -}}

{{- define "lakehouse.databaseEnv" -}}
- name: DATABASE_URL
  valueFrom: {secretKeyRef: {name: {{ .Values.database.urlSecret }}, key: {{ .Values.database.urlKey }}}}
{{- end -}}

{{/* How every Kafka client connects (lakehouse.settings.KafkaSettings); the CA is a file of the kafka-ca volume. */}}
{{- define "lakehouse.kafkaEnv" -}}
{{- $k := .Values.kafka -}}
- {name: KAFKA_BOOTSTRAP_SERVERS, value: {{ $k.bootstrapServers | quote }}}
- {name: KAFKA_SECURITY_PROTOCOL, value: {{ $k.securityProtocol | quote }}}
{{- if hasPrefix "SASL" $k.securityProtocol }}
- {name: KAFKA_SASL_MECHANISM, value: {{ $k.sasl.mechanism | quote }}}
- {name: KAFKA_SASL_USERNAME, value: {{ required "kafka.sasl.username is required with a SASL securityProtocol" $k.sasl.username | quote }}}
- name: KAFKA_SASL_PASSWORD
  valueFrom: {secretKeyRef: {name: {{ required "kafka.sasl.passwordSecret is required with a SASL securityProtocol" $k.sasl.passwordSecret }}, key: {{ $k.sasl.passwordKey }}}}
{{- end }}
{{- if $k.tls.caSecret }}
- {name: KAFKA_SSL_CA_LOCATION, value: {{ printf "/etc/lakehouse/kafka-ca/%s" $k.tls.caKey | quote }}}
{{- end }}
{{- end -}}

{{- define "lakehouse.kafkaVolumeMounts" -}}
{{- if .Values.kafka.tls.caSecret }}
- {name: kafka-ca, mountPath: /etc/lakehouse/kafka-ca, readOnly: true}
{{- end }}
{{- end -}}

{{- define "lakehouse.kafkaVolumes" -}}
{{- with .Values.kafka.tls.caSecret }}
- name: kafka-ca
  secret: {secretName: {{ . }}, items: [{key: {{ $.Values.kafka.tls.caKey }}, path: {{ $.Values.kafka.tls.caKey }}}]}
{{- end }}
{{- end -}}
