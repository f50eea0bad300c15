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
