"""The Flask extensions, created unbound here and bound to an app by create_app()."""
from flask_login import LoginManager
from flask_socketio import SocketIO
from flask_wtf import CSRFProtect

socketio = SocketIO()
login_manager = LoginManager()
csrf = CSRFProtect()
