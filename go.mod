module github.com/stratuskit/stratus

go 1.26

require (
	github.com/hashicorp/go-memdb v1.3.5
	go.etcd.io/bbolt v1.4.3
)

require (
	github.com/hashicorp/go-immutable-radix v1.3.1 // indirect
	github.com/hashicorp/golang-lru v0.5.4 // indirect
	golang.org/x/sys v0.29.0 // indirect
)
