{{- define "responder.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "responder.fullname" -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "responder.labels" -}}
app.kubernetes.io/name: {{ include "responder.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "responder.selector" -}}
app.kubernetes.io/name: {{ include "responder.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "responder.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "responder.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* settings.yaml: the chart's defaults under .Values.settings (which win), and the fields the pods' shape fixes,
which .Values.settings may not name (docs/deploying.md). The image sets no RESPONDER_* variable. */}}
{{- define "responder.settings" -}}
{{- $fixed := dict "metrics_host" "0.0.0.0" "metrics_port" (int .Values.metricsPort) "intake_host" "0.0.0.0"
      "intake_port" (int .Values.intake.port) "timeline_path" "/data/timeline.jsonl" -}}
{{- range $field, $_ := $fixed -}}
{{- if hasKey $.Values.settings $field -}}
{{- fail (printf "settings.%s is fixed by the chart (the pods' ports, probes and volume follow it): set metricsPort or intake.port instead, or leave it out" $field) -}}
{{- end -}}
{{- end -}}
{{- $defaults := dict "runbooks_dir" (ternary "/etc/responder/runbooks" "/app/runbooks" (not (empty .Values.runbooks)))
      "model_registry" "/data/models" "intake_topic" .Values.intake.topic
      "intake_signing_key_id" .Values.intake.signingKeyId -}}
{{- toYaml (merge $fixed (deepCopy .Values.settings) $defaults) -}}
{{- end -}}
