package defaults

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/diff"
	"k8s.io/utils/ptr"
)

// defaultCase is one row of the table tests: in is defaulted and must come out
// equal to want.
type defaultCase struct {
	name string
	in   runtime.Object
	want runtime.Object
}

// runCases defaults a copy of every input, compares it with the expectation,
// and checks that a second pass changes nothing.
func runCases(t *testing.T, cases []defaultCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.in.DeepCopyObject()
			Default(got)
			if !apiequality.Semantic.DeepEqual(got, tc.want) {
				t.Errorf("Default: got (-) differs from want (+):\n%s", diff.Diff(got, tc.want))
			}
			again := got.DeepCopyObject()
			Default(again)
			if !reflect.DeepEqual(again, got) {
				t.Errorf("Default is not idempotent: second pass got (-) differs from first pass (+):\n%s", diff.Diff(again, got))
			}
		})
	}
}

func q(s string) resource.Quantity { return resource.MustParse(s) }

// templateSpec returns the PodSpec defaults every pod template receives, with
// the given containers, written out literally so that a wrong constant in the
// code under test cannot hide.
func templateSpec(containers ...corev1.Container) corev1.PodSpec {
	return corev1.PodSpec{
		Containers:                    containers,
		RestartPolicy:                 "Always",
		TerminationGracePeriodSeconds: ptr.To(int64(30)),
		DNSPolicy:                     "ClusterFirst",
		SecurityContext:               &corev1.PodSecurityContext{},
		SchedulerName:                 "default-scheduler",
	}
}

// podSpec is templateSpec plus the Pod-only defaults.
func podSpec(containers ...corev1.Container) corev1.PodSpec {
	s := templateSpec(containers...)
	s.EnableServiceLinks = ptr.To(true)
	return s
}

// container returns a container as a user would write it.
func container(name, image string) corev1.Container {
	return corev1.Container{Name: name, Image: image}
}

// defaultedContainer returns container(name, image) with its defaults.
func defaultedContainer(name, image string, pull corev1.PullPolicy) corev1.Container {
	return corev1.Container{
		Name:                     name,
		Image:                    image,
		ImagePullPolicy:          pull,
		TerminationMessagePath:   "/dev/termination-log",
		TerminationMessagePolicy: "File",
	}
}

// template returns a pod template with one container "app" running image.
func template(image string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{container("app", image)}}}
}

// defaultedTemplate is template(image) after defaulting.
func defaultedTemplate(image string, pull corev1.PullPolicy) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{Spec: templateSpec(defaultedContainer("app", image, pull))}
}
