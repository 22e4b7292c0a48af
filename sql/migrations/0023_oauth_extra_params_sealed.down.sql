-- Going down loses the sealed extra parameter values (extra_params holds them empty): set those
-- parameters again after.
ALTER TABLE walhook.oauth_credential DROP COLUMN IF EXISTS extra_params_enc;
