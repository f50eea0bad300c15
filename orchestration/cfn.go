package orchestration

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/stratuskit/stratus/errdefs"
)

// CloudFormation templates (AWSTemplateFormatVersion) are translated into
// HOT on parsing: sections and keys renamed, Ref into get_param or
// get_resource, Fn::GetAtt, Fn::Join, Fn::Split, Fn::If and the condition
// functions into their HOT forms; Fn::Select, Fn::Base64 and
// Fn::FindInMap are evaluated as they are (Fn::Base64 passes its text
// through, as Heat's does: compute encodes user data itself).

var cfnSections = []string{"AWSTemplateFormatVersion", "Description", "Parameters", "Mappings", "Conditions", "Resources", "Outputs", "Metadata"}

var cfnParamTypes = map[string]string{"String": TypeString, "Number": TypeNumber, "CommaDelimitedList": TypeList,
	"List<Number>": TypeList, "Json": TypeJSON, "Boolean": TypeBoolean}

// cfnPseudo are the pseudo parameters Ref may name.
var cfnPseudo = map[string]any{"AWS::StackName": map[string]any{"get_param": "OS::stack_name"},
	"AWS::StackId": map[string]any{"get_param": "OS::stack_id"}, "AWS::AccountId": map[string]any{"get_param": "OS::project_id"},
	"AWS::Region": "RegionOne", "AWS::NoValue": nil}

// fromCFN translates a CloudFormation document into a HOT one.
func fromCFN(raw map[string]any) (map[string]any, error) {
	for k := range raw {
		if !slices.Contains(cfnSections, k) {
			return nil, invalid(k, "%q is not a valid CloudFormation template section", k)
		}
	}
	if v := textOf(raw["AWSTemplateFormatVersion"]); v != "2010-09-09" {
		return nil, invalid("AWSTemplateFormatVersion", "%q is not a known version (2010-09-09)", v)
	}
	hot := map[string]any{"heat_template_version": "2016-10-14"}
	if d, ok := raw["Description"]; ok {
		hot["description"] = d
	}
	params, err := section(raw, "Parameters")
	if err != nil {
		return nil, err
	}
	res, err := section(raw, "Resources")
	if err != nil {
		return nil, err
	}
	conds, err := section(raw, "Conditions")
	if err != nil {
		return nil, err
	}
	tr := &cfnTr{params: params, resources: res}
	hp := map[string]any{}
	for name, v := range params {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, invalid("Parameters."+name, "parameter %q must be a map", name)
		}
		p, err := cfnParam(name, m)
		if err != nil {
			return nil, err
		}
		hp[name] = p
	}
	hot["parameters"] = hp
	if _, err := section(raw, "Mappings"); err != nil {
		return nil, err
	}
	hot["mappings"] = raw["Mappings"]
	hc := map[string]any{}
	for name, v := range conds {
		if hc[name], err = tr.fn("Conditions."+name, v, 0); err != nil {
			return nil, err
		}
	}
	if len(hc) > 0 {
		hot["conditions"] = hc
	}
	hr := map[string]any{}
	for name, v := range res {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, invalid("Resources."+name, "resource %q must be a map", name)
		}
		out := map[string]any{}
		for k, x := range m {
			field := "Resources." + name + "." + k
			switch k {
			case "Type":
				out["type"] = x
			case "Properties":
				if out["properties"], err = tr.fn(field, x, 0); err != nil {
					return nil, err
				}
			case "Metadata":
				out["metadata"] = x
			case "DependsOn":
				out["depends_on"] = x
			case "DeletionPolicy":
				out["deletion_policy"] = x
			case "Condition":
				out["condition"] = x
			case "UpdatePolicy", "CreationPolicy", "UpdateReplacePolicy":
			default:
				return nil, invalid(field, "%q is not a valid resource key", k)
			}
		}
		hr[name] = out
	}
	hot["resources"] = hr
	outs, err := section(raw, "Outputs")
	if err != nil {
		return nil, err
	}
	ho := map[string]any{}
	for name, v := range outs {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, invalid("Outputs."+name, "each output must be a map")
		}
		o := map[string]any{}
		for k, x := range m {
			switch k {
			case "Value":
				if o["value"], err = tr.fn("Outputs."+name+".Value", x, 0); err != nil {
					return nil, err
				}
			case "Description":
				o["description"] = x
			case "Condition":
				o["condition"] = x
			case "Export":
			default:
				return nil, invalid("Outputs."+name+"."+k, "%q is not a valid output key", k)
			}
		}
		ho[name] = o
	}
	hot["outputs"] = ho
	return hot, nil
}

func cfnParam(name string, m map[string]any) (map[string]any, error) {
	field := "Parameters." + name
	typ, ok := cfnParamTypes[textOf(m["Type"])]
	if !ok {
		return nil, invalid(field+".Type", "parameter %q has unknown type %q", name, textOf(m["Type"]))
	}
	p := map[string]any{"type": typ}
	var cs []any
	desc := textOf(m["ConstraintDescription"])
	add := func(c map[string]any) {
		if desc != "" {
			c["description"] = desc
		}
		cs = append(cs, c)
	}
	for k, v := range m {
		switch k {
		case "Type", "ConstraintDescription":
		case "Default":
			p["default"] = v
		case "Description":
			p["description"] = v
		case "NoEcho":
			p["hidden"] = textOf(v) == "true"
		case "AllowedValues":
			add(map[string]any{"allowed_values": v})
		case "AllowedPattern":
			add(map[string]any{"allowed_pattern": v})
		case "MinLength", "MaxLength", "MinValue", "MaxValue":
		default:
			return nil, invalid(field+"."+k, "%q is not a valid parameter key", k)
		}
	}
	if m["MinLength"] != nil || m["MaxLength"] != nil {
		b := map[string]any{}
		if v := m["MinLength"]; v != nil {
			b["min"] = v
		}
		if v := m["MaxLength"]; v != nil {
			b["max"] = v
		}
		add(map[string]any{"length": b})
	}
	if m["MinValue"] != nil || m["MaxValue"] != nil {
		b := map[string]any{}
		if v := m["MinValue"]; v != nil {
			b["min"] = v
		}
		if v := m["MaxValue"]; v != nil {
			b["max"] = v
		}
		add(map[string]any{"range": b})
	}
	if cs != nil {
		p["constraints"] = cs
	}
	return p, nil
}

type cfnTr struct {
	params, resources map[string]any
}

// fn translates CloudFormation functions in v.
func (c *cfnTr) fn(field string, v any, depth int) (any, error) {
	if depth > 64 {
		return nil, invalid(field, "nested too deep")
	}
	switch t := v.(type) {
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			r, err := c.fn(field, x, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	case map[string]any:
		if len(t) == 1 {
			for k, arg := range t {
				if k == "Ref" || k == "Condition" || strings.HasPrefix(k, "Fn::") {
					return c.call(field, k, arg, depth)
				}
			}
		}
		out := make(map[string]any, len(t))
		for k, x := range t {
			r, err := c.fn(field+"."+k, x, depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	}
	return v, nil
}

var cfnRenamed = map[string]string{"Fn::GetAtt": "get_attr", "Fn::Join": "list_join", "Fn::Split": "str_split",
	"Fn::If": "if", "Fn::Equals": "equals", "Fn::And": "and", "Fn::Or": "or", "Fn::Not": "not"}

func (c *cfnTr) call(field, name string, arg any, depth int) (any, error) {
	switch name {
	case "Ref":
		s, ok := arg.(string)
		if !ok {
			return nil, invalid(field, "Ref: the argument must be a parameter or resource name")
		}
		if v, ok := cfnPseudo[s]; ok {
			return v, nil
		}
		if _, ok := c.params[s]; ok {
			return map[string]any{"get_param": s}, nil
		}
		if _, ok := c.resources[s]; ok {
			return map[string]any{"get_resource": s}, nil
		}
		return nil, invalid(field, "Ref: %q is neither a parameter nor a resource", s)
	case "Condition":
		return arg, nil
	}
	a, err := c.fn(field, arg, depth+1)
	if err != nil {
		return nil, err
	}
	if name == "Fn::Not" {
		if l, ok := a.([]any); ok && len(l) == 1 {
			a = l[0]
		}
	}
	if h, ok := cfnRenamed[name]; ok {
		return map[string]any{h: a}, nil
	}
	switch name {
	case "Fn::Select", "Fn::Base64", "Fn::FindInMap":
		return map[string]any{name: a}, nil
	}
	return nil, errdefs.Wrap(errdefs.ErrUnsupported, invalid(field, "the function %q is not supported", name))
}

// cfnCall evaluates the CloudFormation functions kept as they are.
func (e *evaluator) cfnCall(field, name string, arg any) (any, error) {
	switch name {
	case "Fn::Base64":
		s, ok := arg.(string)
		if !ok {
			return nil, invalid(field, "Fn::Base64: the argument must be a string")
		}
		return s, nil
	case "Fn::Select":
		l, ok := arg.([]any)
		if !ok || len(l) != 2 {
			return nil, invalid(field, "Fn::Select: the arguments must be [index, list]")
		}
		i, err := toNumber(l[0])
		if err != nil {
			return nil, invalid(field, "Fn::Select: the index must be a number")
		}
		switch t := l[1].(type) {
		case []any:
			if i < 0 || int(i) >= len(t) {
				return nil, invalid(field, "Fn::Select: index %v is out of range", l[0])
			}
			return t[int(i)], nil
		case map[string]any:
			return t[textOf(l[0])], nil
		case string:
			parts := strings.Split(t, ",")
			if i < 0 || int(i) >= len(parts) {
				return nil, invalid(field, "Fn::Select: index %v is out of range", l[0])
			}
			return parts[int(i)], nil
		}
		return nil, invalid(field, "Fn::Select: the second argument must be a list")
	case "Fn::FindInMap":
		l, ok := arg.([]any)
		if !ok || len(l) != 3 {
			return nil, invalid(field, "Fn::FindInMap: the arguments must be [map, key, key]")
		}
		m, _ := e.t.Mappings[textOf(l[0])].(map[string]any)
		if m == nil {
			return nil, invalid(field, "Fn::FindInMap: no mapping %q", textOf(l[0]))
		}
		k, _ := m[textOf(l[1])].(map[string]any)
		v, ok := k[textOf(l[2])]
		if !ok {
			return nil, invalid(field, "Fn::FindInMap: no %s/%s in mapping %q", textOf(l[1]), textOf(l[2]), textOf(l[0]))
		}
		return v, nil
	}
	return nil, invalid(field, "unknown function %q", name)
}

// ec2Instance is AWS::EC2::Instance, on the compute service.
type ec2Instance struct {
	server serverPlugin
	n      Network
}

func (p ec2Instance) Schema() *TypeSchema {
	_, resizes := p.server.c.(ServerResizer)
	return &TypeSchema{
		Description: "An EC2 instance, made as a compute server.",
		Properties: map[string]*PropSchema{
			"ImageId":          {Type: PropString, Required: true, Constraints: []Constraint{{Custom: "glance.image"}}},
			"InstanceType":     {Type: PropString, Required: true, UpdateAllowed: resizes, Constraints: []Constraint{{Custom: "nova.flavor"}}},
			"KeyName":          {Type: PropString, Constraints: []Constraint{{Custom: "nova.keypair"}}},
			"SecurityGroups":   {Type: PropList, Description: "Security group names or ids."},
			"SecurityGroupIds": {Type: PropList, Description: "Security group ids."},
			"UserData":         str("User data."),
			"SubnetId":         str("A subnet: the instance gets a port on its network."),
			"AvailabilityZone": str("Availability zone."),
			"Tags":             {Type: PropList, Description: "Key/Value maps, kept as server metadata."},
		},
		Attributes: map[string]string{"PrivateIp": "The first private address.", "PublicIp": "The first address.",
			"PrivateDnsName": "The first private address.", "PublicDnsName": "The first address.", "AvailabilityZone": "Availability zone."},
	}
}

func (p ec2Instance) asServer(ctx context.Context, r *Resource) (*Resource, error) {
	sr := *r
	props := map[string]any{"image": r.Str("ImageId"), "flavor": r.Str("InstanceType"), "key_name": r.Str("KeyName"),
		"user_data": r.Str("UserData"), "availability_zone": r.Str("AvailabilityZone"),
		"security_groups": append(slices.Clone(r.List("SecurityGroups")), r.List("SecurityGroupIds")...)}
	if sub := r.Str("SubnetId"); sub != "" {
		if p.n == nil {
			return nil, invalid("SubnetId", "this cloud has no network service")
		}
		m, err := p.n.Show(ctx, KindSubnet, sub)
		if err != nil {
			return nil, err
		}
		props["networks"] = []any{map[string]any{"network": textOf(m["network_id"])}}
	}
	md := map[string]any{}
	for _, t := range r.List("Tags") {
		if m, ok := t.(map[string]any); ok {
			md[textOf(m["Key"])] = textOf(m["Value"])
		}
	}
	if len(md) > 0 {
		props["metadata"] = md
	}
	sr.Properties = props
	return &sr, nil
}

func (p ec2Instance) Create(ctx context.Context, r *Resource) (string, error) {
	sr, err := p.asServer(ctx, r)
	if err != nil {
		return "", err
	}
	return p.server.Create(ctx, sr)
}

func (p ec2Instance) Update(ctx context.Context, r *Resource, old map[string]any) error {
	sr, err := p.asServer(ctx, r)
	if err != nil {
		return err
	}
	return p.server.Update(ctx, sr, map[string]any{"flavor": old["InstanceType"]})
}

func (p ec2Instance) Find(ctx context.Context, r *Resource) (string, error) {
	return p.server.Find(ctx, r)
}

func (p ec2Instance) Ready(ctx context.Context, r *Resource) (bool, error) {
	return p.server.Ready(ctx, r)
}

func (p ec2Instance) Delete(ctx context.Context, r *Resource) error { return p.server.Delete(ctx, r) }

func (p ec2Instance) Attribute(ctx context.Context, r *Resource, name string) (any, error) {
	switch name {
	case "PrivateIp", "PublicIp", "PrivateDnsName", "PublicDnsName":
		return p.server.Attribute(ctx, r, "first_address")
	case "AvailabilityZone":
		s, err := p.server.c.GetServer(ctx, r.PhysicalID)
		if err != nil {
			return nil, err
		}
		return s.Show["OS-EXT-AZ:availability_zone"], nil
	}
	return p.server.Attribute(ctx, r, name)
}

// ec2SecurityGroup is AWS::EC2::SecurityGroup, on the network service.
type ec2SecurityGroup struct{ n Network }

func (ec2SecurityGroup) Schema() *TypeSchema {
	rules := "Rules: maps with IpProtocol, FromPort, ToPort, CidrIp, SourceSecurityGroupId."
	return &TypeSchema{
		Description: "An EC2 security group, made as a network security group.",
		Properties: map[string]*PropSchema{
			"GroupDescription":     {Type: PropString, Required: true},
			"SecurityGroupIngress": {Type: PropList, Description: rules},
			"SecurityGroupEgress":  {Type: PropList, Description: rules},
			"VpcId":                str("Unused here."),
			"Tags":                 {Type: PropList, Description: "Unused here."},
		},
		Attributes: map[string]string{"GroupId": "The group's id."},
	}
}

func (p ec2SecurityGroup) Create(ctx context.Context, r *Resource) (string, error) {
	id, err := p.n.CreateSecurityGroup(ctx, r.PhysicalName, r.Str("GroupDescription"))
	if err != nil {
		return "", err
	}
	for _, dir := range []string{"ingress", "egress"} {
		key := "SecurityGroupIngress"
		if dir == "egress" {
			key = "SecurityGroupEgress"
		}
		for i, rv := range r.List(key) {
			m, ok := rv.(map[string]any)
			if !ok {
				return id, invalid(key, "rule %d must be a map", i)
			}
			rs := RuleSpec{SecurityGroup: id, Direction: dir, EtherType: "IPv4", Protocol: textOf(m["IpProtocol"]),
				RemoteIPPrefix: textOf(m["CidrIp"]), RemoteGroup: textOf(m["SourceSecurityGroupId"])}
			if rs.Protocol == "-1" {
				rs.Protocol = ""
			}
			if f, err := toNumber(m["FromPort"]); err == nil && f >= 0 {
				rs.PortMin = int(f)
			}
			if f, err := toNumber(m["ToPort"]); err == nil && f >= 0 {
				rs.PortMax = int(f)
			}
			if _, err := p.n.CreateRule(ctx, rs); err != nil {
				return id, err
			}
		}
	}
	return id, nil
}

func (p ec2SecurityGroup) Find(ctx context.Context, r *Resource) (string, error) {
	return p.n.Find(ctx, KindSecurityGroup, r.PhysicalName)
}

func (p ec2SecurityGroup) Delete(ctx context.Context, r *Resource) error {
	return p.n.Delete(ctx, KindSecurityGroup, r.PhysicalID)
}

func (p ec2SecurityGroup) Attribute(ctx context.Context, r *Resource, name string) (any, error) {
	switch name {
	case "GroupId":
		return r.PhysicalID, nil
	case "show":
		return p.n.Show(ctx, KindSecurityGroup, r.PhysicalID)
	}
	return nil, fmt.Errorf("no attribute %q", name)
}
