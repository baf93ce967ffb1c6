package storage

import (
	"errors"
	"fmt"
	"net/http"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// errModified is the reason upstream gives for a stale write.
const errModified = "the object has been modified; please apply your changes to the latest version and try again"

func tooOld(rv int64) error {
	return apierrors.NewResourceExpired(fmt.Sprintf("too old resource version: %d", rv))
}

func continueExpired() error {
	return apierrors.NewResourceExpired("The provided continue parameter is too old to display a consistent list result. " +
		"You can start a new list without the continue parameter.")
}

func tooLargeResourceVersion(want, have int64) error {
	err := apierrors.NewTimeoutError(fmt.Sprintf("Too large resource version: %d, current: %d", want, have), 1)
	err.ErrStatus.Details.Causes = []metav1.StatusCause{{
		Type:    metav1.CauseTypeResourceVersionTooLarge,
		Message: "Too large resource version",
	}}
	return err
}

// etcdError turns an etcd error into an API error a client can act on.
func etcdError(err error) error {
	if err == nil {
		return nil
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return err
	}
	switch {
	case errors.Is(err, rpctypes.ErrCompacted):
		return apierrors.NewResourceExpired("the requested resource version has been compacted")
	case errors.Is(err, rpctypes.ErrRequestTooLarge):
		return &apierrors.StatusError{ErrStatus: metav1.Status{
			Status:  metav1.StatusFailure,
			Code:    http.StatusRequestEntityTooLarge,
			Reason:  metav1.StatusReasonRequestEntityTooLarge,
			Message: "etcdserver: request is too large",
		}}
	}
	return apierrors.NewInternalError(fmt.Errorf("storage: %w", err))
}
