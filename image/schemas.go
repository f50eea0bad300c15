package image

import (
	_ "embed"
	"encoding/json"
	"net/http"
)

// Glance's JSON schemas, which glanceclient fetches before its calls.
var (
	//go:embed schemas/image.json
	imageSchemaJSON []byte
	//go:embed schemas/member.json
	memberSchemaJSON []byte

	imageSchema   = mustJSON(imageSchemaJSON)
	memberSchema  = mustJSON(memberSchemaJSON)
	imagesSchema  = collectionSchema("images", imageSchema, true)
	membersSchema = collectionSchema("members", memberSchema, false)
)

func mustJSON(b []byte) map[string]any {
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		panic("image: embedded schema: " + err.Error())
	}
	return m
}

func collectionSchema(name string, item map[string]any, paged bool) map[string]any {
	props := map[string]any{
		name:     map[string]any{"type": "array", "items": item},
		"schema": map[string]any{"type": "string"},
	}
	links := []any{map[string]any{"href": "{schema}", "rel": "describedby"}}
	if paged {
		props["first"] = map[string]any{"type": "string"}
		props["next"] = map[string]any{"type": "string"}
		links = append([]any{
			map[string]any{"href": "{first}", "rel": "first"},
			map[string]any{"href": "{next}", "rel": "next"},
		}, links...)
	}
	return map[string]any{"name": name, "properties": props, "links": links}
}

func schema(s map[string]any) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { reply(w, http.StatusOK, s) }
}
