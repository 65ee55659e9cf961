// Command etcd is the etcd server, built from go.etcd.io/etcd/server/v3.
//
// etcd's own main module (go.etcd.io/etcd/v3) carries replace directives and
// cannot be installed as a dependency, so this is a one-line main over the
// server module's etcdmain package, which is what that main calls too.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
