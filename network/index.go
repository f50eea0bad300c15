package network

import "fmt"

// Typed memdb indexers for the hot ports table. memdb's StringFieldIndex
// finds its field by name through reflection on every insert, update and
// delete, for every index; these read the field directly and encode the
// same way (the value and a 0 byte; an empty value is missing).

// strIndex indexes a record of type T by one string.
type strIndex[T any] func(*T) string

func (f strIndex[T]) FromObject(obj any) (bool, []byte, error) {
	r, ok := obj.(*T)
	if !ok {
		return false, nil, fmt.Errorf("network: index: %T is not a %T", obj, r)
	}
	v := f(r)
	if v == "" {
		return false, nil, nil
	}
	return true, append([]byte(v), 0), nil
}

func (strIndex[T]) FromArgs(args ...any) ([]byte, error) {
	k, err := stringArg(args)
	return append([]byte(k), 0), err
}

func (strIndex[T]) PrefixFromArgs(args ...any) ([]byte, error) {
	k, err := stringArg(args)
	return []byte(k), err
}

// strsIndex indexes a record of type T by each of several strings.
type strsIndex[T any] func(*T) []string

func (f strsIndex[T]) FromObject(obj any) (bool, [][]byte, error) {
	r, ok := obj.(*T)
	if !ok {
		return false, nil, fmt.Errorf("network: index: %T is not a %T", obj, r)
	}
	var vals [][]byte
	for _, v := range f(r) {
		if v != "" {
			vals = append(vals, append([]byte(v), 0))
		}
	}
	return len(vals) > 0, vals, nil
}

func (strsIndex[T]) FromArgs(args ...any) ([]byte, error) {
	k, err := stringArg(args)
	return append([]byte(k), 0), err
}

func (strsIndex[T]) PrefixFromArgs(args ...any) ([]byte, error) {
	k, err := stringArg(args)
	return []byte(k), err
}

func stringArg(args []any) (string, error) {
	if len(args) != 1 {
		return "", fmt.Errorf("network: index takes one argument, got %d", len(args))
	}
	k, ok := args[0].(string)
	if !ok {
		return "", fmt.Errorf("network: index argument must be a string, got %T", args[0])
	}
	return k, nil
}
