package blockstore_test

import "github.com/stratuskit/stratus/objectstore"

func objKey(name string) objectstore.ObjectKey {
	return objectstore.ObjectKey{Account: "blockstore", Container: "backups", Name: name}
}

func objPut() objectstore.PutOptions { return objectstore.PutOptions{} }
