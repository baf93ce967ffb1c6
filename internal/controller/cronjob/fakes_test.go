package cronjob

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

type runtimeObject = runtime.Object

func typesUID(i int) types.UID { return types.UID(fmt.Sprint("job-", i)) }
