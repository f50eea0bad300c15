package orchestration

import (
	"testing"
)

const cfnTmpl = `{
  "AWSTemplateFormatVersion": "2010-09-09",
  "Description": "CFN in JSON",
  "Parameters": {
    "Env": {"Type": "String", "Default": "prod", "AllowedValues": ["prod", "dev"]},
    "Zones": {"Type": "CommaDelimitedList", "Default": "a,b,c"}
  },
  "Mappings": {"Sizes": {"prod": {"Size": 8}, "dev": {"Size": 1}}},
  "Conditions": {
    "IsProd": {"Fn::Equals": [{"Ref": "Env"}, "prod"]},
    "IsDev": {"Fn::Not": [{"Condition": "IsProd"}]}
  },
  "Resources": {
    "Main": {"Type": "Test::Thing", "Properties": {
      "size": {"Fn::FindInMap": ["Sizes", {"Ref": "Env"}, "Size"]},
      "zone": {"Fn::Select": [1, {"Ref": "Zones"}]}}},
    "Extra": {"Type": "Test::Thing", "Condition": "IsDev", "DependsOn": "Main"},
    "Tagged": {"Type": "Test::Thing", "Properties": {
      "ref": {"Fn::Join": ["-", [{"Ref": "AWS::StackName"}, {"Ref": "Main"}, {"Fn::If": ["IsProd", "p", "d"]}]]},
      "zone": {"Fn::Base64": {"Fn::Select": [0, {"Fn::Split": [",", "x,y"]}]}}}}
  },
  "Outputs": {
    "MainSize": {"Value": {"Fn::GetAtt": ["Main", "size"]}, "Description": "size"},
    "Ref": {"Value": {"Ref": "Main"}},
    "ExtraRef": {"Value": {"Ref": "Extra"}, "Condition": "IsDev"}
  }
}`

func TestCloudFormationTemplate(t *testing.T) {
	th := newThing()
	s := newService(t, Config{Plugins: map[string]Plugin{"Test::Thing": th}})
	ctx := member("p1")
	for _, env := range []string{"prod", "dev"} {
		st, err := s.CreateStack(ctx, CreateStackOpts{Name: "cfn-" + env, Template: []byte(cfnTmpl), Parameters: map[string]any{"Env": env}})
		if err != nil {
			t.Fatal(err)
		}
		if got := waitStack(t, s, ctx, st.ID); got.StackStatus() != "CREATE_COMPLETE" {
			t.Fatalf("%s: %s: %s", env, got.StackStatus(), got.StatusReason)
		}
		ids := physIDs(t, s, ctx, st.ID)
		outs, _ := s.Outputs(ctx, st)
		o := map[string]any{}
		for _, x := range outs {
			o[x.Key] = x.Value
		}
		main := th.live[ids["Main"]]
		wantSize, mark := 8, "p"
		if env == "dev" {
			wantSize, mark = 1, "d"
		}
		if main["size"] != wantSize || main["zone"] != "b" || o["MainSize"] != wantSize || o["Ref"] != ids["Main"] {
			t.Fatalf("%s: main %v outputs %v", env, main, o)
		}
		if tg := th.live[ids["Tagged"]]; tg["ref"] != "cfn-"+env+"-"+ids["Main"]+"-"+mark || tg["zone"] != "x" {
			t.Fatalf("%s: tagged %v", env, tg)
		}
		if _, made := ids["Extra"]; made != (env == "dev") || (o["ExtraRef"] != nil) != (env == "dev") {
			t.Fatalf("%s: resources %v outputs %v", env, ids, o)
		}
		if err := s.DeleteStack(ctx, st.ID); err != nil {
			t.Fatal(err)
		}
		waitStack(t, s, ctx, st.ID)
	}
	if len(th.liveIDs()) != 0 {
		t.Fatalf("left %v", th.liveIDs())
	}
	// YAML works too; a bad Ref names its place.
	_, err := ParseTemplate([]byte("AWSTemplateFormatVersion: '2010-09-09'\nResources:\n  A: {Type: Test::Thing, Properties: {ref: {Ref: Nope}}}\n"), Limits{})
	if field(err) != "Resources.A.Properties.ref" {
		t.Fatalf("bad ref: %v", err)
	}
}
