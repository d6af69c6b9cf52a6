-- mod_auth_xcauth: Prosody authentication through xcauthd.
--
-- Debian's Prosody runs on Lua 5.4 and ships no mod_auth_external, so this small
-- provider talks to xcauthd's generic (prosody) listener over TCP instead of
-- spawning a process. One short TCP connection per request; the reply is
-- exactly "1" or "0".
--
-- Prosody runs every client session on one event loop. Inside a session's
-- async runner (where SASL authentication happens) the request is made with
-- Prosody's own non-blocking network API, so a slow backend delays only the
-- client that is logging in. Elsewhere (prosodyctl, other callers outside a
-- runner) it falls back to a blocking LuaSocket call bounded by xcauth_timeout.
--
-- Prosody configuration:
--   authentication = "xcauth"
--   xcauth_host = "127.0.0.1"    -- where xcauthd listens (generic framing)
--   xcauth_port = 23663
--   xcauth_timeout = 5           -- seconds
--
-- Licence: MIT OR Apache-2.0 (part of xcauth-rs).

local socket = require "socket";
local async = require "util.async";
local connect = require "net.connect".connect;
local basic_resolver = require "net.resolvers.basic";
local new_sasl = require "util.sasl".new;

local host = module.host;
local xc_host = module:get_option_string("xcauth_host", "127.0.0.1");
local xc_port = module:get_option_number("xcauth_port", 23663);
local xc_timeout = module:get_option_number("xcauth_timeout", 5);

local log = module._log;

-- A reply longer than this is not an xcauthd reply.
local max_reply = 1024;

-- Blocking variant: one request line, returns the reply line or nil.
local function query_blocking(line)
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

-- Non-blocking variant, for use inside an async runner: suspends only the
-- calling session until the reply, a failure or the timeout.
local function query_async(line)
	local wait, done = async.waiter();
	local finished, reply, failure = false, nil, nil;
	local current;
	local buffer = "";

	local function finish(r, why)
		if finished then return; end
		finished, reply, failure = true, r, why;
		if current then current:close(); end
		done();
	end

	local listeners = {};
	function listeners.onconnect(conn)
		current = conn;
		if finished then conn:close(); return; end
		conn:write(line .. "\n");
	end
	function listeners.onincoming(_, data)
		buffer = buffer .. data;
		local l = buffer:match("^([^\n]*)\n");
		if l then
			finish((l:gsub("\r$", "")));
		elseif #buffer > max_reply then
			finish(nil, "reply too long");
		end
	end
	function listeners.ondisconnect(_, err)
		current = nil;
		finish(nil, err or "connection closed without a reply");
	end
	function listeners.onfail(_, err)
		finish(nil, "cannot connect: " .. tostring(err));
	end

	local timer = module:add_timer(xc_timeout, function ()
		finish(nil, "timed out after " .. tostring(xc_timeout) .. " s");
	end);
	connect(basic_resolver.new(xc_host, xc_port, "tcp"), listeners, { pattern = "*a" });
	wait();
	timer:stop();
	if not reply then
		log("error", "cannot reach xcauthd at %s:%d: %s", xc_host, xc_port, tostring(failure));
	end
	return reply;
end

local function query(line)
	if async.ready() then
		return query_async(line);
	end
	return query_blocking(line);
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
