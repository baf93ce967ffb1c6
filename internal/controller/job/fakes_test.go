package job

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	k8stesting "k8s.io/client-go/testing"
)

type (
	k8stestingAction = k8stesting.Action
	createAction     = k8stesting.CreateAction
	runtimeObject    = runtime.Object
)

func typesUID(s string) types.UID { return types.UID("uid-" + s) }
