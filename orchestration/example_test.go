package orchestration_test

import (
	"context"
	"fmt"
	"time"

	"github.com/stratuskit/stratus/identity"
	"github.com/stratuskit/stratus/orchestration"
	"github.com/stratuskit/stratus/store"
	"github.com/stratuskit/stratus/store/memstore"
)

// Example creates a stack of two resources, one built from the other's
// attribute, and reads its output.
func Example() {
	ctx := context.Background()
	st, _ := store.Open(ctx, memstore.New(), orchestration.Tables(), nil)
	defer st.Close()
	svc, _ := orchestration.New(orchestration.Config{Store: st})
	_ = svc.Start(ctx)
	defer svc.Close()

	user := identity.WithCredentials(ctx, &identity.Credentials{UserID: "u1", ProjectID: "p1", Roles: []string{identity.RoleMember, identity.RoleReader}})
	stack, err := svc.CreateStack(user, orchestration.CreateStackOpts{Name: "hello", Template: []byte(`
heat_template_version: 2018-08-31
parameters:
  who: {type: string, default: world}
resources:
  greeting:
    type: OS::Heat::TestResource
    properties: {value: {str_replace: {template: "hello $who", params: {$who: {get_param: who}}}}}
  shout:
    type: OS::Heat::TestResource
    properties: {value: {list_join: ["", [{get_attr: [greeting, output]}, "!"]]}}
outputs:
  message: {value: {get_attr: [shout, output]}}
`), Parameters: map[string]any{"who": "heat"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	for stack.Status == orchestration.StatusInProgress {
		time.Sleep(time.Millisecond)
		stack, _ = svc.GetStack(user, stack.ID)
	}
	outs, _ := svc.Outputs(user, stack)
	fmt.Println(stack.StackStatus(), outs[0].Value)
	// Output: CREATE_COMPLETE hello heat!
}

// ExampleService_UpdateStack updates a stack in place: the resource keeps
// its physical id, its value changes.
func ExampleService_UpdateStack() {
	ctx := context.Background()
	st, _ := store.Open(ctx, memstore.New(), orchestration.Tables(), nil)
	defer st.Close()
	svc, _ := orchestration.New(orchestration.Config{Store: st})
	_ = svc.Start(ctx)
	defer svc.Close()

	user := identity.WithCredentials(ctx, &identity.Credentials{UserID: "u1", ProjectID: "p1", Roles: []string{identity.RoleMember, identity.RoleReader}})
	wait := func(id string) *orchestration.Stack {
		for {
			s, _ := svc.GetStack(user, id)
			if s.Status != orchestration.StatusInProgress {
				return s
			}
			time.Sleep(time.Millisecond)
		}
	}
	tmpl := []byte(`
heat_template_version: 2018-08-31
parameters:
  v: {type: string}
resources:
  r: {type: OS::Heat::TestResource, properties: {value: {get_param: v}}}
outputs:
  v: {value: {get_attr: [r, output]}}
`)
	stack, err := svc.CreateStack(user, orchestration.CreateStackOpts{Name: "u", Template: tmpl, Parameters: map[string]any{"v": "one"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	before, _ := svc.GetResource(user, wait(stack.ID).ID, "r")
	// PATCH: the same template, one parameter changed.
	if _, err := svc.UpdateStack(user, stack.ID, orchestration.UpdateStackOpts{Existing: true, Parameters: map[string]any{"v": "two"}}); err != nil {
		fmt.Println(err)
		return
	}
	stack = wait(stack.ID)
	after, _ := svc.GetResource(user, stack.ID, "r")
	outs, _ := svc.Outputs(user, stack)
	fmt.Println(stack.StackStatus(), outs[0].Value, after.PhysicalID == before.PhysicalID)
	// Output: UPDATE_COMPLETE two true
}
