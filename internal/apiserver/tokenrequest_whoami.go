package apiserver

import (
	"net/http"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiff-sh/skiff/internal/auth"
)

var selfSubjectReviewGVK = authenticationv1.SchemeGroupVersion.WithKind("SelfSubjectReview")

// selfSubjectReviewFor is the review answering user's "who am I".
func selfSubjectReviewFor(u *auth.User) *authenticationv1.SelfSubjectReview {
	out := &authenticationv1.SelfSubjectReview{}
	out.SetGroupVersionKind(selfSubjectReviewGVK)
	if u == nil {
		return out
	}
	out.Status.UserInfo = authenticationv1.UserInfo{Username: u.Name, UID: u.UID, Groups: append([]string(nil), u.Groups...)}
	if len(u.Extra) > 0 {
		out.Status.UserInfo.Extra = map[string]authenticationv1.ExtraValue{}
		for k, v := range u.Extra {
			out.Status.UserInfo.Extra[k] = append(authenticationv1.ExtraValue(nil), v...)
		}
	}
	return out
}

// selfSubjectReview serves POST selfsubjectreviews (`kubectl auth
// whoami`): 201 with the requester's user name, uid, groups and extra.
func (c *call) selfSubjectReview() error {
	if c.info.Verb != "create" {
		return apierrors.NewMethodNotSupported(schema.GroupResource{Group: "authentication.k8s.io", Resource: "selfsubjectreviews"}, c.info.Verb)
	}
	var err error
	if c.out, err = negotiate(c.r); err != nil {
		return err
	}
	body, err := c.readBody()
	if err != nil {
		return err
	}
	if len(body) > 0 {
		if _, err := c.decodeBody(body, selfSubjectReviewGVK); err != nil {
			return err
		}
	}
	out := selfSubjectReviewFor(auth.UserFrom(c.ctx))
	out.CreationTimestamp = metav1.NewTime(c.now.Truncate(1e9))
	if c.out.proto {
		msg, err := marshalProto(out)
		if err != nil {
			return apierrors.NewInternalError(err)
		}
		writeBytes(c.w, http.StatusCreated, protobufType, protoEnvelope(selfSubjectReviewGVK, msg))
		return nil
	}
	data, ct, err := c.out.encode(out)
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	writeBytes(c.w, http.StatusCreated, ct, data)
	return nil
}
