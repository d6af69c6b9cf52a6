-- mod_auth_xcauth: Prosody authentication through xcauthd.
--
-- Debian's Prosody runs on Lua 5.4 and ships no mod_auth_external, so this small
-- provider talks to xcauthd's generic (prosody) listener over TCP instead of
-- spawning a process. One short TCP connection per request; the reply is
-- exactly "1" or "0".
--
-- Prosody configuration:
--   authentication = "xcauth"
--   xcauth_host = "127.0.0.1"    -- where xcauthd listens (generic framing)
--   xcauth_port = 23663
--   xcauth_timeout = 5           -- seconds
--
-- Licence: MIT OR Apache-2.0 (part of xcauth-rs).

local socket = require "socket";
local new_sasl = require "util.sasl".new;

local host = module.host;
local xc_host = module:get_option_string("xcauth_host", "127.0.0.1");
local xc_port = module:get_option_number("xcauth_port", 23663);
local xc_timeout = module:get_option_number("xcauth_timeout", 5);

local log = module._log;

-- Sends one request line, returns the reply line or nil.
local function query(line)
	local conn = socket.tcp();
	conn:settimeout(xc_timeout);
	local ok, err = conn:connect(xc_host, xc_port);
	if not ok then
		log("error", "cannot reach xcauthd at %s:%d: %s", xc_host, xc_port, tostring(err));
		conn:close();
		return nil;
	end
	local sent, serr = conn:send(line .. "\n");
	if not sent then
		log("error", "sending to xcauthd failed: %s", tostring(serr));
		conn:close();
		return nil;
	end
	local reply, rerr = conn:receive("*l");
	conn:close();
	if not reply then
		log("error", "no reply from xcauthd: %s", tostring(rerr));
		return nil;
	end
	return reply;
end

-- The generic framing separates fields with ':' and requests with '\n':
-- a user name holding ':' or any field holding a line break cannot be sent.
local function representable(username, password)
	if username:find("[:\r\n]") then return false; end
	if password and password:find("[\r\n]") then return false; end
	return true;
end

local provider = {};

function provider.test_password(username, password)
	if not representable(username, password) then
		return nil, "Auth failed. Invalid username or password.";
	end
	if query(("auth:%s:%s:%s"):format(username, host, password)) == "1" then
		return true;
	end
	return nil, "Auth failed. Invalid username or password.";
end

function provider.user_exists(username)
	if not representable(username) then return nil; end
	if query(("isuser:%s:%s"):format(username, host)) == "1" then
		return true;
	end
	return nil, "User not found";
end

function provider.set_password()
	return nil, "Passwords are managed in Nextcloud";
end

function provider.create_user()
	return nil, "Accounts are managed in Nextcloud";
end

function provider.delete_user()
	return nil, "Accounts are managed in Nextcloud";
end

function provider.users()
	return function() return nil; end
end

function provider.get_sasl_handler()
	return new_sasl(host, {
		plain_test = function(_, username, password)
			return provider.test_password(username, password) == true, true;
		end;
	});
end

module:provides("auth", provider);
