// Command etcd is upstream etcd built from its Go modules, for `fedlet up
// --datastore etcd` and the tests. etcd's own module cannot be installed with
// `go install` (its go.mod has replace directives), so this module's main
// calls etcdmain.Main, which is what upstream's main does.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
