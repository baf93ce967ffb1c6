package validation

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// fe is an expected error: its type and field path.
type fe struct {
	t field.ErrorType
	f string
}

func (e fe) String() string { return fmt.Sprintf("%s %s", e.t, e.f) }

func required(f string) fe     { return fe{field.ErrorTypeRequired, f} }
func invalid(f string) fe      { return fe{field.ErrorTypeInvalid, f} }
func notSupported(f string) fe { return fe{field.ErrorTypeNotSupported, f} }
func forbidden(f string) fe    { return fe{field.ErrorTypeForbidden, f} }
func duplicate(f string) fe    { return fe{field.ErrorTypeDuplicate, f} }
func notFound(f string) fe     { return fe{field.ErrorTypeNotFound, f} }
func tooLong(f string) fe      { return fe{field.ErrorTypeTooLong, f} }

// render lists errors as sorted "type field" lines for comparison.
func render(errs field.ErrorList) string {
	lines := make([]string, 0, len(errs))
	for _, e := range errs {
		lines = append(lines, fe{e.Type, e.Field}.String())
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func renderWant(want []fe) string {
	lines := make([]string, 0, len(want))
	for _, w := range want {
		lines = append(lines, w.String())
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// expectErrors fails unless errs has exactly the wanted (type, field) pairs.
func expectErrors(t *testing.T, errs field.ErrorList, want ...fe) {
	t.Helper()
	if got, w := render(errs), renderWant(want); got != w {
		t.Errorf("got errors:\n%s\nwant:\n%s\nfull: %v", got, w, errs.ToAggregate())
	}
}

// expectMessage fails unless one error renders exactly as msg.
func expectMessage(t *testing.T, errs field.ErrorList, msg string) {
	t.Helper()
	for _, e := range errs {
		if e.Error() == msg {
			return
		}
	}
	t.Errorf("got %v, want an error %q", errs.ToAggregate(), msg)
}

type createCase[T runtime.Object] struct {
	name   string
	mutate func(T)
	want   []fe
}

// runCreate validates fresh() after each case's mutation.
func runCreate[T runtime.Object](t *testing.T, fresh func() T, cases []createCase[T]) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := fresh()
			if tc.mutate != nil {
				tc.mutate(obj)
			}
			expectErrors(t, ValidateCreate(obj), tc.want...)
		})
	}
}

type updateCase[T runtime.Object] struct {
	name   string
	mutate func(T)
	want   []fe
}

// runUpdate validates an update from stored() to a mutated copy of it.
func runUpdate[T runtime.Object](t *testing.T, stored func() T, status bool, cases []updateCase[T]) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			old := stored()
			obj := stored()
			if tc.mutate != nil {
				tc.mutate(obj)
			}
			var errs field.ErrorList
			if status {
				errs = ValidateStatusUpdate(obj, old)
			} else {
				errs = ValidateUpdate(obj, old)
			}
			expectErrors(t, errs, tc.want...)
		})
	}
}

// Fixtures: minimal objects as they look after defaulting.

func ptr[T any](v T) *T { return &v }

func objMeta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: "default", UID: "11111111-2222-3333-4444-555555555555", ResourceVersion: "7"}
}

func clusterMeta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, UID: "11111111-2222-3333-4444-555555555555", ResourceVersion: "7"}
}

func container(name, image string) corev1.Container {
	return corev1.Container{
		Name:                     name,
		Image:                    image,
		ImagePullPolicy:          corev1.PullIfNotPresent,
		TerminationMessagePath:   corev1.TerminationMessagePathDefault,
		TerminationMessagePolicy: corev1.TerminationMessageReadFile,
	}
}

func podSpec() corev1.PodSpec {
	return corev1.PodSpec{
		Containers:                    []corev1.Container{container("web", "nginx:1.27")},
		RestartPolicy:                 corev1.RestartPolicyAlways,
		DNSPolicy:                     corev1.DNSClusterFirst,
		TerminationGracePeriodSeconds: ptr(int64(30)),
		SchedulerName:                 corev1.DefaultSchedulerName,
		SecurityContext:               &corev1.PodSecurityContext{},
	}
}

func podTemplate(labels map[string]string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: podSpec()}
}

func newPod() *corev1.Pod {
	return &corev1.Pod{ObjectMeta: objMeta("web"), Spec: podSpec()}
}

func newDeployment() *appsv1.Deployment {
	pct := intstr.FromString("25%")
	return &appsv1.Deployment{
		ObjectMeta: objMeta("web"),
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(int32(2)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: podTemplate(map[string]string{"app": "web"}),
			Strategy: appsv1.DeploymentStrategy{
				Type:          appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: &pct, MaxSurge: &pct},
			},
			RevisionHistoryLimit:    ptr(int32(10)),
			ProgressDeadlineSeconds: ptr(int32(600)),
		},
	}
}

func quantity(s string) resource.Quantity { return resource.MustParse(s) }
