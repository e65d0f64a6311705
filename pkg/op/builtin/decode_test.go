package builtin_test

import "encoding/json"

func decodeInto(in map[string]any, p any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, p)
}
