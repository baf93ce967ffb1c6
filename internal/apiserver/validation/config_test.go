package validation

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func newConfigMap() *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: objMeta("cfg"), Data: map[string]string{"app.properties": "a=b"}}
}

func TestConfigMap(t *testing.T) {
	runCreate(t, newConfigMap, []createCase[*corev1.ConfigMap]{
		{name: "valid"},
		{name: "bad key", mutate: func(c *corev1.ConfigMap) { c.Data["my key"] = "x" }, want: []fe{invalid("data[my key]")}},
		{name: "dot-dot key", mutate: func(c *corev1.ConfigMap) { c.Data[".."] = "x" }, want: []fe{invalid("data[..]")}},
		{name: "key in data and binaryData", mutate: func(c *corev1.ConfigMap) { c.BinaryData = map[string][]byte{"app.properties": {1}} },
			want: []fe{invalid("data[app.properties]")}},
		{name: "too large", mutate: func(c *corev1.ConfigMap) { c.Data["big"] = strings.Repeat("x", maxSecretSize) },
			// Upstream's path is field.NewPath(""), which renders as "[]".
			want: []fe{tooLong("[]")}},
	})
	immutable := func() *corev1.ConfigMap {
		c := newConfigMap()
		c.Immutable = ptr(true)
		return c
	}
	runUpdate(t, newConfigMap, false, []updateCase[*corev1.ConfigMap]{
		{name: "data change on mutable map", mutate: func(c *corev1.ConfigMap) { c.Data["app.properties"] = "a=c" }},
	})
	runUpdate(t, immutable, false, []updateCase[*corev1.ConfigMap]{
		{name: "label change on immutable map", mutate: func(c *corev1.ConfigMap) { c.Labels = map[string]string{"a": "b"} }},
		{name: "data change on immutable map", mutate: func(c *corev1.ConfigMap) { c.Data["app.properties"] = "a=c" },
			want: []fe{forbidden("data")}},
		{name: "immutable unset", mutate: func(c *corev1.ConfigMap) { c.Immutable = nil },
			want: []fe{forbidden("immutable")}},
	})
	old, c := immutable(), immutable()
	c.Data["x"] = "y"
	expectMessage(t, ValidateUpdate(c, old), "data: Forbidden: field is immutable when `immutable` is set")
}

func newSecret() *corev1.Secret {
	return &corev1.Secret{ObjectMeta: objMeta("creds"), Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"password": []byte("hunter2")}}
}

func TestSecret(t *testing.T) {
	runCreate(t, newSecret, []createCase[*corev1.Secret]{
		{name: "valid"},
		{name: "valid tls", mutate: func(s *corev1.Secret) {
			s.Type = corev1.SecretTypeTLS
			s.Data = map[string][]byte{"tls.crt": []byte("c"), "tls.key": []byte("k")}
		}},
		{name: "tls from stringData", mutate: func(s *corev1.Secret) {
			s.Type = corev1.SecretTypeTLS
			s.StringData = map[string]string{"tls.crt": "c", "tls.key": "k"}
		}},
		{name: "tls without key", mutate: func(s *corev1.Secret) {
			s.Type = corev1.SecretTypeTLS
			s.Data = map[string][]byte{"tls.crt": []byte("c")}
		}, want: []fe{required("data[tls.key]")}},
		{name: "dockerconfigjson missing", mutate: func(s *corev1.Secret) { s.Type = corev1.SecretTypeDockerConfigJson },
			want: []fe{required("data[.dockerconfigjson]")}},
		{name: "dockerconfigjson not JSON", mutate: func(s *corev1.Secret) {
			s.Type = corev1.SecretTypeDockerConfigJson
			s.Data = map[string][]byte{".dockerconfigjson": []byte("{")}
		}, want: []fe{invalid("data[.dockerconfigjson]")}},
		{name: "basic-auth without fields", mutate: func(s *corev1.Secret) { s.Type, s.Data = corev1.SecretTypeBasicAuth, nil },
			want: []fe{required("data[username]"), required("data[password]")}},
		{name: "ssh-auth without key", mutate: func(s *corev1.Secret) { s.Type = corev1.SecretTypeSSHAuth },
			want: []fe{required("data[ssh-privatekey]")}},
		{name: "service account token without annotation", mutate: func(s *corev1.Secret) { s.Type = corev1.SecretTypeServiceAccountToken },
			want: []fe{required("metadata.annotations[kubernetes.io/service-account.name]")}},
		{name: "bad key", mutate: func(s *corev1.Secret) { s.Data["a/b"] = []byte("x") }, want: []fe{invalid("data[a/b]")}},
		{name: "too large", mutate: func(s *corev1.Secret) { s.Data["big"] = make([]byte, maxSecretSize) },
			want: []fe{tooLong("data")}},
	})
	runUpdate(t, newSecret, false, []updateCase[*corev1.Secret]{
		{name: "data change", mutate: func(s *corev1.Secret) { s.Data["password"] = []byte("x") }},
		{name: "type immutable", mutate: func(s *corev1.Secret) { s.Type = "example.com/custom" }, want: []fe{invalid("type")}},
		{name: "immutable secret data", mutate: func(s *corev1.Secret) { s.Immutable = ptr(true) }},
	})
	immutable := func() *corev1.Secret {
		s := newSecret()
		s.Immutable = ptr(true)
		return s
	}
	runUpdate(t, immutable, false, []updateCase[*corev1.Secret]{
		{name: "data change", mutate: func(s *corev1.Secret) { s.Data["password"] = []byte("x") }, want: []fe{forbidden("data")}},
	})
	s := newSecret()
	s.Type = corev1.SecretTypeTLS
	expectMessage(t, ValidateCreate(s), "data[tls.crt]: Required value")
}

func TestServiceAccount(t *testing.T) {
	fresh := func() *corev1.ServiceAccount { return &corev1.ServiceAccount{ObjectMeta: objMeta("builder")} }
	runCreate(t, fresh, []createCase[*corev1.ServiceAccount]{
		{name: "valid"},
		{name: "bad name", mutate: func(s *corev1.ServiceAccount) { s.Name = "Builder" }, want: []fe{invalid("metadata.name")}},
		{name: "bad label", mutate: func(s *corev1.ServiceAccount) { s.Labels = map[string]string{"-a": "b"} }, want: []fe{invalid("metadata.labels")}},
		{name: "bad annotation key", mutate: func(s *corev1.ServiceAccount) { s.Annotations = map[string]string{"a b": "c"} },
			want: []fe{invalid("metadata.annotations")}},
		{name: "unqualified finalizer", mutate: func(s *corev1.ServiceAccount) { s.Finalizers = []string{"cleanup"} },
			want: []fe{invalid("metadata.finalizers[0]")}},
	})
}
