-- Hidden OAuth extra parameters (marked secret, or with a credential-looking key such as
-- password, client_assertion or api_key) are sealed like the client secret: their values, in
-- order, as one sealed JSON array bound to the row. extra_params keeps each such parameter's key
-- with an empty value and "sealed": true. Rows written before this migration keep their values in
-- extra_params until `walhook keys reseal` seals them; reads accept both.
ALTER TABLE walhook.oauth_credential ADD COLUMN extra_params_enc bytea;
