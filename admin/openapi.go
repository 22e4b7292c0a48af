package admin

import (
	_ "embed"
	"net/http"
)

// openAPI is the hand-written OpenAPI 3 document of the API; a test keeps it and the router in step.
//
//go:embed openapi.yaml
var openAPI []byte

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	_, _ = w.Write(openAPI)
}
