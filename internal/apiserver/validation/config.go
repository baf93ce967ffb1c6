package validation

import (
	"encoding/json"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// maxSecretSize bounds Secret data and ConfigMap data+binaryData (1 MiB).
const maxSecretSize = 1 * 1024 * 1024

const immutableSetMsg = "field is immutable when `immutable` is set"

func validateConfigKeys[V any](data map[string]V, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	for _, k := range sortedKeys(data) {
		for _, msg := range validation.IsConfigMapKey(k) {
			allErrs = append(allErrs, field.Invalid(fldPath.Key(k), k, msg))
		}
	}
	return allErrs
}

// ConfigMap

func validateConfigMap(cm *corev1.ConfigMap) field.ErrorList {
	allErrs := validateObjectMeta(&cm.ObjectMeta, true, nameIsDNSSubdomain, field.NewPath("metadata"))
	dataPath := field.NewPath("data")
	total := 0
	allErrs = append(allErrs, validateConfigKeys(cm.Data, dataPath)...)
	for _, k := range sortedKeys(cm.Data) {
		if _, dup := cm.BinaryData[k]; dup {
			allErrs = append(allErrs, field.Invalid(dataPath.Key(k), k, "duplicate of key present in binaryData"))
		}
		total += len(cm.Data[k])
	}
	allErrs = append(allErrs, validateConfigKeys(cm.BinaryData, field.NewPath("binaryData"))...)
	for _, v := range cm.BinaryData {
		total += len(v)
	}
	if total > maxSecretSize {
		// An empty path: the error concerns the whole object.
		allErrs = append(allErrs, field.TooLong(field.NewPath(""), "", maxSecretSize))
	}
	return allErrs
}

func validateConfigMapUpdate(cm, old *corev1.ConfigMap) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&cm.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))
	if deref(old.Immutable, false) {
		if !deref(cm.Immutable, false) {
			allErrs = append(allErrs, field.Forbidden(field.NewPath("immutable"), immutableSetMsg))
		}
		if !semanticEqual(emptyAsNil(cm.Data), emptyAsNil(old.Data)) {
			allErrs = append(allErrs, field.Forbidden(field.NewPath("data"), immutableSetMsg))
		}
		if !semanticEqual(emptyAsNil(cm.BinaryData), emptyAsNil(old.BinaryData)) {
			allErrs = append(allErrs, field.Forbidden(field.NewPath("binaryData"), immutableSetMsg))
		}
	}
	return append(allErrs, validateConfigMap(cm)...)
}

// emptyAsNil treats an empty map like an absent one: JSON decoding yields
// either for "data: {}", and upstream's internal types make them equal.
func emptyAsNil[V any](m map[string]V) map[string]V {
	if len(m) == 0 {
		return nil
	}
	return m
}

// Secret

// withStringData returns the Secret upstream validates: conversion from v1
// merges stringData into data (stringData wins) before validation runs.
func withStringData(s *corev1.Secret) *corev1.Secret {
	if len(s.StringData) == 0 {
		return s
	}
	c := s.DeepCopy()
	if c.Data == nil {
		c.Data = map[string][]byte{}
	}
	for k, v := range c.StringData {
		c.Data[k] = []byte(v)
	}
	c.StringData = nil
	return c
}

func validateSecret(s *corev1.Secret) field.ErrorList {
	s = withStringData(s)
	allErrs := validateObjectMeta(&s.ObjectMeta, true, nameIsDNSSubdomain, field.NewPath("metadata"))
	dataPath := field.NewPath("data")
	allErrs = append(allErrs, validateConfigKeys(s.Data, dataPath)...)
	total := 0
	for _, v := range s.Data {
		total += len(v)
	}
	if total > maxSecretSize {
		allErrs = append(allErrs, field.TooLong(dataPath, "", maxSecretSize))
	}
	switch s.Type {
	case corev1.SecretTypeServiceAccountToken:
		if s.Annotations[corev1.ServiceAccountNameKey] == "" {
			allErrs = append(allErrs, field.Required(field.NewPath("metadata", "annotations").Key(corev1.ServiceAccountNameKey), ""))
		}
	case corev1.SecretTypeOpaque, "":
	case corev1.SecretTypeDockercfg:
		allErrs = append(allErrs, validateJSONKey(s.Data, corev1.DockerConfigKey, dataPath)...)
	case corev1.SecretTypeDockerConfigJson:
		allErrs = append(allErrs, validateJSONKey(s.Data, corev1.DockerConfigJsonKey, dataPath)...)
	case corev1.SecretTypeBasicAuth:
		_, hasUser := s.Data[corev1.BasicAuthUsernameKey]
		_, hasPassword := s.Data[corev1.BasicAuthPasswordKey]
		if !hasUser && !hasPassword {
			allErrs = append(allErrs, field.Required(dataPath.Key(corev1.BasicAuthUsernameKey), ""))
			allErrs = append(allErrs, field.Required(dataPath.Key(corev1.BasicAuthPasswordKey), ""))
		}
	case corev1.SecretTypeSSHAuth:
		if len(s.Data[corev1.SSHAuthPrivateKey]) == 0 {
			allErrs = append(allErrs, field.Required(dataPath.Key(corev1.SSHAuthPrivateKey), ""))
		}
	case corev1.SecretTypeTLS:
		if _, ok := s.Data[corev1.TLSCertKey]; !ok {
			allErrs = append(allErrs, field.Required(dataPath.Key(corev1.TLSCertKey), ""))
		}
		if _, ok := s.Data[corev1.TLSPrivateKeyKey]; !ok {
			allErrs = append(allErrs, field.Required(dataPath.Key(corev1.TLSPrivateKeyKey), ""))
		}
	}
	return allErrs
}

// validateJSONKey requires data[key] to exist and hold a JSON object.
func validateJSONKey(data map[string][]byte, key string, dataPath *field.Path) field.ErrorList {
	raw, ok := data[key]
	if !ok {
		return field.ErrorList{field.Required(dataPath.Key(key), "")}
	}
	if err := json.Unmarshal(raw, &map[string]interface{}{}); err != nil {
		return field.ErrorList{field.Invalid(dataPath.Key(key), "<secret contents redacted>", err.Error())}
	}
	return nil
}

func validateSecretUpdate(s, old *corev1.Secret) field.ErrorList {
	s, old = withStringData(s), withStringData(old)
	allErrs := validateObjectMetaUpdate(&s.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))
	allErrs = append(allErrs, validateImmutableField(s.Type, old.Type, field.NewPath("type"))...)
	if deref(old.Immutable, false) {
		if !deref(s.Immutable, false) {
			allErrs = append(allErrs, field.Forbidden(field.NewPath("immutable"), immutableSetMsg))
		}
		if !semanticEqual(emptyAsNil(s.Data), emptyAsNil(old.Data)) {
			allErrs = append(allErrs, field.Forbidden(field.NewPath("data"), immutableSetMsg))
		}
	}
	return append(allErrs, validateSecret(s)...)
}

// ServiceAccount

func validateServiceAccount(sa *corev1.ServiceAccount) field.ErrorList {
	return validateObjectMeta(&sa.ObjectMeta, true, nameIsDNSSubdomain, field.NewPath("metadata"))
}

func validateServiceAccountUpdate(sa, old *corev1.ServiceAccount) field.ErrorList {
	allErrs := validateObjectMetaUpdate(&sa.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))
	return append(allErrs, validateServiceAccount(sa)...)
}
