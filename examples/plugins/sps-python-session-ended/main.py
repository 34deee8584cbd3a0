class Plugin:
    def __init__(self, configuration):
        self.configuration = configuration

    def get_password_list(self, session_id, cookie, server_username, server_hostname, **kwargs):
        # Hands out no password; remembers what was asked so session_ended can log it.
        return {"passwords": [], "cookie": {"account": server_username, "asset": server_hostname}}

    # From "Creating custom Credential Store plugins", session_ended example (unchanged):
    def session_ended(self, session_id, session_cookie, cookie):
        session_details = ','.join([
            '{0}={1}'.format(key, cookie[key])
            for key in sorted(cookie.keys())
        ])
        print("Session ended; session_id='{0}', session_details='{1}'".
            format(session_id, session_details))
